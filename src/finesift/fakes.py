"""Deterministic text features shared by the fake embedder and fake reranker (no dependencies)."""

from __future__ import annotations

import hashlib
import itertools
import re

_WORD = re.compile(r"[a-z0-9_]+|[\u3400-\u9fff\uf900-\ufaff]", re.IGNORECASE)


def features(text: str) -> list[str]:
    """Lower-cased words, plus character bigrams for CJK runs (so Chinese text overlaps sensibly)."""
    tokens = [t.lower() for t in _WORD.findall(text)]
    grams = [a + b for a, b in itertools.pairwise(tokens) if len(a) == 1 and len(b) == 1]
    return tokens + grams


def count_tokens(texts: list[str] | tuple[str, ...]) -> list[int]:
    """The fake embedder's token count per text: its features plus one (an end-of-text token)."""
    return [len(features(t)) + 1 for t in texts]


def bucket(feature: str, size: int) -> tuple[int, float]:
    """A stable (index, sign) for a feature: the same in every process and on every machine."""
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % size, 1.0 if (value >> 63) & 1 else -1.0
