"""How one search runs: the ``search`` settings with per-request overrides, plus filters.

Every search option is declared once, in :class:`finesift.settings.SearchSettings`; the CLI flags, the
``FINESIFT_SEARCH__*`` variables and the fields of ``POST /v1/kbs/{kb}/search`` all carry its names.
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import Field

from finesift.settings import MAX_TOP_K, SearchMode, SearchSettings, validated
from finesift.store.base import Filters

Mode = SearchMode
MODES: tuple[Mode, ...] = get_args(SearchMode)

__all__ = ["MAX_TOP_K", "MODES", "Mode", "SearchOptions", "validate_options"]


class SearchOptions(SearchSettings):
    """One search: ``candidates`` is K for each recall list; ``rerank_top_n`` is N.

    Built validated: ``SearchOptions(top_k=0)`` raises :class:`~finesift.errors.InvalidRequest`.
    """

    filters: Filters = Field(default_factory=Filters, description="metadata filters (source prefix, types)")

    def __init__(self, **data: Any) -> None:
        # Validation errors become the tree's InvalidRequest, with one line naming each field.
        validated(SearchSettings, {k: v for k, v in data.items() if k != "filters"})
        super().__init__(**data)

    @classmethod
    def of(
        cls, settings: SearchSettings, /, *, filters: Filters | None = None, **overrides: Any
    ) -> SearchOptions:
        """``settings`` with ``overrides`` (``None`` keeps a setting) and ``filters``."""
        changes = {k: v for k, v in overrides.items() if v is not None}
        return cls(**{**dict(settings), **changes, "filters": filters or Filters()})


def validate_options(options: SearchOptions) -> SearchOptions:
    """``options`` checked again (one built with ``model_construct`` skipped validation)."""
    return SearchOptions(**dict(options))
