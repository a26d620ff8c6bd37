"""finesift's BM25 terms as text a store engine's own analyzer splits back into exactly those terms.

Stores that run BM25 inside their engine (Milvus's BM25 function) index a text field, not a term
list. :func:`joined_terms` writes the terms space-separated so that a whitespace tokenizer, or a
``\\w+`` tokenizer that lower-cases (Milvus Lite's ``standard``), gives back the same terms: a term
that is not all lower-case word characters is written as ``_`` plus the hex of its UTF-8 bytes.
That cannot collide with a real term: :func:`finesift.lexical.tokenize` never yields a term that
starts with ``_``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

#: Okapi BM25 parameters of :class:`finesift.lexical.BM25Index`, which store-side BM25 uses too.
BM25_K1 = 1.2
BM25_B = 0.75
_PLAIN = re.compile(r"\w+")


def escape_term(term: str) -> str:
    """``term`` itself when every tokenizer keeps it whole and as is, else ``_`` + its UTF-8 hex."""
    if _PLAIN.fullmatch(term) and term.lower() == term and not term.startswith("_"):
        return term
    return "_" + term.encode("utf-8").hex()


def joined_terms(terms: Sequence[str]) -> str:
    """The terms as one space-separated text (each escaped with :func:`escape_term`)."""
    return " ".join(escape_term(t) for t in terms if t)
