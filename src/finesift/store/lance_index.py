"""The indexes of a LanceDB store's chunks table: BM25 inside Lance, and an ANN index past a size.

Full text: the column ``lex`` holds each chunk's BM25 terms (:func:`finesift.lexical.tokenize`
output, the ``terms`` of its :class:`~finesift.store.base.DocumentWrite`) joined by single spaces,
indexed by Lance's native inverted index with the whitespace tokenizer and every normalisation off
(no lower-casing, stemming, stop words, folding or length cap). The engine's terms are therefore
exactly finesift's: CJK sub-words, camelCase/snake_case parts and the stopword list all hold. The
index covers the rows present when it was last refreshed; rows written since are searched flat by
Lance, deletes are honoured at once. :meth:`~finesift.store.lancedb.LanceStore.optimize` (the
compaction path) folds new rows into every index.

Vectors: below :attr:`LanceIndexOptions.ann_min_rows` chunks dense search is exact (a flat scan);
the first compaction past it trains an ANN index, which later compactions extend. Rows written
after the last compaction are searched flat and merged, so they are found at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

log = logging.getLogger(__name__)
LEX = "lex"
AnnIndex = Literal["IVF_HNSW_SQ", "IVF_PQ"]


@dataclass(frozen=True)
class LanceIndexOptions:
    """When the ANN index is built and how it trades recall for latency (see ``kb.ann_*`` settings)."""

    ann_min_rows: int = 20_000
    ann_index: AnnIndex = "IVF_HNSW_SQ"
    nprobes: int = 20
    refine_factor: int = 0  # 0: no re-ranking of ANN candidates by exact distance
    ef: int = 64


def create_fts(table: Any) -> None:
    """(Re)build the inverted index over ``lex`` with finesift's tokens taken as they are."""
    from lancedb.index import FTS

    config = FTS(
        base_tokenizer="whitespace", lower_case=False, stem=False, remove_stop_words=False,
        ascii_folding=False, max_token_length=None, with_position=False,
    )  # fmt: skip
    table.create_index(LEX, config=config, replace=True)


def has_lex(table: Any) -> bool:
    """Whether the table has the token column (stores written before it have not)."""
    return LEX in table.schema.names


def upgrade(table: Any) -> bool:
    """Give a chunks table written by an older finesift its ``lex`` column and index; whether it did.

    The column is computed inside Lance from the stored ``terms``; no row comes to the client.
    """
    if has_lex(table):
        return False
    log.warning("adding the full-text index to an older LanceDB store (once)")
    table.add_columns({LEX: "array_to_string(terms, ' ')"})
    create_fts(table)
    return True


def has_vector_index(table: Any) -> bool:
    return any(list(i.columns) == ["vector"] for i in table.list_indices())


def build_ann_if_due(table: Any, options: LanceIndexOptions) -> bool:
    """Train the ANN index once the table holds ``ann_min_rows`` rows; whether it was built now."""
    if has_vector_index(table) or table.count_rows() < options.ann_min_rows:
        return False
    from lancedb.index import IvfHnswSq, IvfPq

    config = IvfPq(distance_type="dot") if options.ann_index == "IVF_PQ" else IvfHnswSq(distance_type="dot")
    table.create_index("vector", config=config, replace=True)
    return True


def tune(query: Any, options: LanceIndexOptions, k: int) -> Any:
    """Apply the recall/latency knobs to a ``k``-nearest vector query over an ANN-indexed table.

    HNSW's candidate list must hold every candidate Lance asks the graph for (``k``, times the refine
    factor when re-ranking), or Lance refuses the query ("ef must be greater than or equal to k"):
    ``kb.ann_ef`` is a floor, raised to that count when a search asks for more.
    """
    query = query.nprobes(options.nprobes)
    if options.refine_factor:
        query = query.refine_factor(options.refine_factor)
    if options.ann_index == "IVF_HNSW_SQ":
        query = query.ef(max(options.ef, k * max(options.refine_factor, 1)))
    return query
