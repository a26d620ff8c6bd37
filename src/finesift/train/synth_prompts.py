"""The recipe's two synthesis calls (Qwen3 Embedding report): configuration, then the query.

1. **Configuration**: given the passage and candidate characters, choose the character likely to
   ask about it, the question type and the difficulty.
2. **Query**: given the passage, that character and a requirement (type, difficulty, length in
   words, language), write one query that the passage answers.

Both answer in JSON. :func:`parse_reply` turns a reply into a dict or raises :class:`ReplyError`
whose ``kind`` says whether it was a refusal or unusable JSON (both are retried, then counted).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

QUESTION_TYPES: dict[str, str] = {
    "keywords": "a few search keywords, not a sentence",
    "acquire_knowledge": "a question that seeks a fact or an explanation",
    "summary": "a request for an overview of the topic",
    "yes_or_no": "a question answered by yes or no",
    "background": "a question about the context, causes or history",
}
DIFFICULTIES = ("high_school", "university", "phd")
LANGUAGE_NAMES = {
    "en": "English", "zh": "Chinese", "de": "German", "fr": "French", "es": "Spanish", "ja": "Japanese",
    "ko": "Korean", "ru": "Russian", "pt": "Portuguese", "it": "Italian", "ar": "Arabic", "nl": "Dutch",
}  # fmt: skip
SYSTEM = "You help build training data for a search engine. You answer with one JSON object and nothing else."
_REFUSAL = re.compile(
    r"\b(sorry|i can(?:no|')t|i cannot|i am unable|i'm unable|i won't|as an ai|not able to)\b", re.IGNORECASE
)
ReplyKind = Literal["invalid_json", "refused"]


class ReplyError(ValueError):
    """A reply that cannot be used: ``kind`` is ``invalid_json`` or ``refused``."""

    def __init__(self, kind: ReplyKind, reason: str) -> None:
        super().__init__(reason)
        self.kind: ReplyKind = kind


@dataclass(frozen=True)
class QueryConfig:
    """The first call's choice."""

    character: str
    question_type: str
    difficulty: str


def config_messages(passage: str, personas: list[str]) -> list[dict[str, str]]:
    """Messages of call 1: choose character, question type and difficulty for ``passage``."""
    people = "\n".join(f"{n}. {p}" for n, p in enumerate(personas, start=1))
    types = "\n".join(f"- {name}: {meaning}" for name, meaning in QUESTION_TYPES.items())
    user = (
        "Given a passage and candidate characters, decide who would most likely search for this passage, "
        "what kind of question they would ask, and how difficult it would be.\n\n"
        f"<passage>\n{passage}\n</passage>\n\n"
        f"Candidate characters:\n{people}\n\n"
        f"Question types:\n{types}\n\n"
        f"Difficulty levels: {', '.join(DIFFICULTIES)}.\n\n"
        'Answer with JSON only: {"character": "<one candidate, copied exactly>", '
        '"question_type": "<one question type>", "difficulty": "<one level>"}'
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def query_messages(passage: str, config: QueryConfig, *, length: int, language: str) -> list[dict[str, str]]:
    """Messages of call 2: one query from the character's point of view that retrieves ``passage``."""
    meaning = QUESTION_TYPES.get(config.question_type, "")
    user = (
        "Write one search query that the character below would type to find the passage.\n\n"
        f"<passage>\n{passage}\n</passage>\n\n"
        f"Character: {config.character}\n"
        "Requirements:\n"
        f"- question type: {config.question_type} ({meaning})\n"
        f"- difficulty: {config.difficulty}\n"
        f"- length: about {length} words\n"
        f"- language: {language}\n"
        "- the passage must answer the query; do not copy its sentences\n\n"
        'Answer with JSON only: {"query": "<the query>"}'
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def parse_reply(text: str) -> dict[str, Any]:
    """The first JSON object in ``text`` (code fences and prose around it tolerated)."""
    start = text.find("{")
    if start < 0:
        kind: ReplyKind = "refused" if _REFUSAL.search(text) else "invalid_json"
        raise ReplyError(kind, f"{'refusal' if kind == 'refused' else 'no JSON object'}: {_excerpt(text)}")
    try:
        value, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError as exc:
        raise ReplyError("invalid_json", f"malformed JSON ({exc.msg}): {_excerpt(text)}") from exc
    if not isinstance(value, dict):
        raise ReplyError("invalid_json", f"not a JSON object: {_excerpt(text)}")
    return value


def parse_config(text: str, personas: list[str]) -> QueryConfig:
    """Call 1's reply; the character may be a candidate's number or text, type and level must be known."""
    value = parse_reply(text)
    character = _text_field(value, "character", text)
    if character.isdigit() and 1 <= int(character) <= len(personas):
        character = personas[int(character) - 1]
    question_type = _choice(value, "question_type", tuple(QUESTION_TYPES), text)
    difficulty = _choice(value, "difficulty", DIFFICULTIES, text)
    return QueryConfig(character, question_type, difficulty)


def parse_query(text: str) -> str:
    """Call 2's reply: the query, whitespace collapsed."""
    query = " ".join(_text_field(parse_reply(text), "query", text).split())
    if _REFUSAL.search(query) and len(query.split()) > 3 and query.lower().startswith(("sorry", "i ")):
        raise ReplyError("refused", f"refusal inside JSON: {_excerpt(query)}")
    return query


def _text_field(value: dict[str, Any], name: str, text: str) -> str:
    field = value.get(name)
    if not isinstance(field, str | int) or not str(field).strip():
        raise ReplyError("invalid_json", f"no {name!r} text in the JSON: {_excerpt(text)}")
    return str(field).strip()


def _choice(value: dict[str, Any], name: str, allowed: tuple[str, ...], text: str) -> str:
    raw = _text_field(value, name, text)
    norm = re.sub(r"[\s-]+", "_", raw.strip().lower())
    if norm not in allowed:
        raise ReplyError("invalid_json", f"{name} {raw!r} is not one of {', '.join(allowed)}")
    return norm


def language_name(code: str) -> str:
    """``en`` -> ``English``; a name that is not a known code is used as given."""
    return LANGUAGE_NAMES.get(code.strip().lower(), code.strip())


def detect_language(text: str) -> str:
    """``zh`` when CJK characters make up a fifth of the letters, else ``en`` (for ``--languages auto``)."""
    letters = [c for c in text if c.isalpha()]
    cjk = sum(1 for c in letters if "\u4e00" <= c <= "\u9fff")
    return "zh" if letters and cjk / len(letters) >= 0.2 else "en"


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat[:120] + ("…" if len(flat) > 120 else ""))
