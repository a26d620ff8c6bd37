"""One search request, built the same way for every face: the CLI, the HTTP route and the library.

:func:`build_search` validates the query, normalises the filters (an empty source prefix is none;
file types lower case, without the dot, blanks dropped), applies the per-request overrides to the
``search`` settings, and tokenises the query for BM25 once: the pipeline searches with those terms
and the HTTP answer reports them, so nothing tokenises the query a second time. A face maps only its
own fields (the CLI makes a relative ``--source`` absolute, as the indexed sources are).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from finesift.errors import InvalidRequest
from finesift.lexical import tokenize
from finesift.retrieval.options import SearchOptions
from finesift.settings import SearchSettings
from finesift.store.base import Filters

MAX_QUERY_CHARS = 8192


def validate_query(query: object) -> str:
    """``query`` stripped; InvalidRequest if it is empty or longer than :data:`MAX_QUERY_CHARS`."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidRequest("the query is empty; pass the text to search for")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidRequest(f"the query is too long ({len(query)} characters; at most {MAX_QUERY_CHARS})")
    return query.strip()


@dataclass(frozen=True)
class SearchRequest:
    """A validated query, its BM25 terms (in order, with repeats) and the options to run it with."""

    query: str
    terms: tuple[str, ...]
    options: SearchOptions

    @classmethod
    def of(cls, query: object, options: SearchOptions) -> SearchRequest:
        """The request for ``query`` under ready-made ``options`` (``KnowledgeBase.search``)."""
        text = validate_query(query)
        return cls(text, tuple(tokenize(text, query=True)), options)

    def query_terms(self) -> list[str]:
        """The distinct terms, in query order (what a page highlights)."""
        return list(dict.fromkeys(self.terms))


def build_search(
    query: object,
    settings: SearchSettings,
    *,
    source: str | None = None,
    file_types: Iterable[str] = (),
    **overrides: Any,
) -> SearchRequest:
    """The request for ``query``: ``settings`` with ``overrides`` (``None`` keeps a setting), only
    sources starting with ``source`` and only ``file_types`` (``pdf``, ``.MD``...; none: all)."""
    filters = Filters(
        source_prefix=source or None,
        file_types=tuple(t.strip().lower().lstrip(".") for t in file_types if t.strip()),
    )
    return SearchRequest.of(query, SearchOptions.of(settings, filters=filters, **overrides))
