"""Qwen3 query instructions: the default task, named tasks, and the exact query format."""

from __future__ import annotations

from finesift.errors import InvalidRequest

DEFAULT_TASK = "Given a web search query, retrieve relevant passages that answer the query"

#: Named instructions for common tasks (English, as the model card advises for every language).
INSTRUCTIONS: dict[str, str] = {
    "web_search": DEFAULT_TASK,
    "question_answering": "Given a question, retrieve passages that answer the question",
    "code_search": "Given a natural language query, retrieve code snippets that answer the query",
    "code_to_code": "Given a code snippet, retrieve code snippets that are functionally equivalent to it",
    "chinese_retrieval": (
        "Given a Chinese search query, retrieve relevant Chinese passages that answer the query"
    ),
    "multilingual_retrieval": "Given a query in any language, retrieve relevant passages in any language",
    "similarity": "Retrieve semantically similar text",
    "fact_checking": "Given a claim, retrieve documents that support or refute the claim",
}


def resolve_instruction(instruction: str | None, *, default: str = DEFAULT_TASK) -> str:
    """Map ``None`` to the default, a registered name to its text, anything else to itself.

    Free text must read like a sentence (contain a space); a single word that is not a known name is
    almost certainly a typo of one, so it is refused with the valid names.
    """
    if instruction is None:
        return default
    if not isinstance(instruction, str):
        raise InvalidRequest(f"instruction must be a string, not {type(instruction).__name__}")
    text = instruction.strip()
    if not text:
        raise InvalidRequest("instruction must not be empty; omit it to use the default task")
    if text in INSTRUCTIONS:
        return INSTRUCTIONS[text]
    if " " not in text:
        names = ", ".join(sorted(INSTRUCTIONS))
        raise InvalidRequest(f"unknown instruction name {text!r}; use one of {names} or a full sentence")
    return text


def format_query(query: str, task: str) -> str:
    """The exact Qwen3 query text: ``Instruct: {task}\\nQuery:{query}`` (newline, no space)."""
    return f"Instruct: {task}\nQuery:{query}"
