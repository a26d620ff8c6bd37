"""The Qwen3-Reranker prompt (transformers model-card form), in one place.

Every local backend builds its token ids here. Only the document is ever truncated: prefix,
instruction, query and suffix are always kept whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from finesift.errors import BackendError, InvalidRequest

PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
    'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
YES, NO = "yes", "no"
#: Documents keep at least this many tokens when a query is long; a longer query is refused.
MIN_DOCUMENT_TOKENS = 16


def body(instruction: str, query: str, document: str) -> str:
    """The user turn of the model card: ``<Instruct>: …\\n<Query>: …\\n<Document>: …``."""
    return f"{head(instruction, query)} {document}"


def head(instruction: str, query: str) -> str:
    """Everything of the body before the document text (the document follows after one space)."""
    return f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>:"


def single_token_id(tokenizer: Any, word: str) -> int:
    """The id of ``word``, checked to be exactly one token both ways."""
    tid = tokenizer.convert_tokens_to_ids(word)
    encoded = tokenizer.encode(word, add_special_tokens=False)
    if tid is None or tid == tokenizer.unk_token_id or encoded != [tid]:
        raise BackendError(
            f"the tokenizer does not encode {word!r} as one token ({encoded}); not a Qwen3 reranker"
        )
    return int(tid)


@dataclass(frozen=True)
class PromptTokens:
    """Token ids of the fixed parts and of the answer words."""

    prefix: list[int]
    suffix: list[int]
    yes_id: int
    no_id: int

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> PromptTokens:
        yes_id, no_id = single_token_id(tokenizer, YES), single_token_id(tokenizer, NO)
        if yes_id == no_id:
            raise BackendError("'yes' and 'no' map to the same token id; the tokenizer is broken")
        return cls(
            prefix=tokenizer.encode(PREFIX, add_special_tokens=False),
            suffix=tokenizer.encode(SUFFIX, add_special_tokens=False),
            yes_id=yes_id,
            no_id=no_id,
        )


def pair_ids(
    tokenizer: Any, tokens: PromptTokens, *, instruction: str, query: str, document: str, max_length: int
) -> tuple[list[int], bool]:
    """Prompt ids for one pair, and whether the document was truncated to fit ``max_length``.

    When the whole body fits it is tokenized in one piece, exactly as the model card does.
    Otherwise head and document are tokenized apart and only the document is cut.
    """
    budget = max_length - len(tokens.prefix) - len(tokens.suffix)
    whole = tokenizer.encode(body(instruction, query, document), add_special_tokens=False)
    if len(whole) <= budget:
        return tokens.prefix + whole + tokens.suffix, False
    head_ids = tokenizer.encode(head(instruction, query), add_special_tokens=False)
    room = budget - len(head_ids)
    if room < MIN_DOCUMENT_TOKENS:
        raise InvalidRequest(
            f"query and instruction take {len(head_ids)} tokens, leaving {max(room, 0)} of the "
            f"{max_length}-token limit for the document; shorten the query or raise max_length"
        )
    doc_ids = tokenizer.encode(" " + document, add_special_tokens=False)[:room]
    return tokens.prefix + head_ids + doc_ids + tokens.suffix, True


def prompt_text(*, instruction: str, query: str, document: str) -> str:
    """The whole prompt as text: what remote runtimes that take a raw string (Ollama) are sent.

    It tokenizes to exactly the ids :func:`pair_ids` builds for a pair that fits (the fixed parts
    end and start at special tokens, so tokenizing apart or together gives the same ids).
    """
    return PREFIX + body(instruction, query, document) + SUFFIX
