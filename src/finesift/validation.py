"""Input validation shared by every entry point (library, CLI, server)."""

from __future__ import annotations

from collections.abc import Sequence

from finesift.errors import InvalidRequest


def validate_texts(texts: object, *, what: str = "texts") -> list[str]:
    """A list of non-empty strings, or :class:`InvalidRequest` naming the first bad item."""
    if isinstance(texts, str | bytes) or not isinstance(texts, Sequence):
        raise InvalidRequest(f"{what} must be a list of strings, not {type(texts).__name__}")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise InvalidRequest(f"{what}[{i}] must be a string, not {type(text).__name__}")
        if not text.strip():
            raise InvalidRequest(f"{what}[{i}] is empty; every text must contain non-whitespace characters")
    return out
