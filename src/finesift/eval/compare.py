"""``--compare``: several configurations side by side, and the tables the CLI prints.

A spec is ``key=value`` pairs separated by commas; a value may list alternatives separated by
``|``, which expands to one configuration per combination, e.g. ``dim=256|512|1024`` or
``mode=dense,dtype=float32|bfloat16``. Keys: see :data:`SPEC_KEYS`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from finesift.errors import InvalidRequest
from finesift.eval.config import EvalConfig
from finesift.eval.runner import EvalResult

#: spec key -> (section, field); section "" means a field of EvalConfig itself.
SPEC_KEYS: dict[str, tuple[str, str]] = {
    "mode": ("", "mode"),
    "dim": ("", "dim"),
    "instruction": ("", "instruction"),
    "rerank-top": ("", "rerank_top"),
    "model": ("embedding", "model"),
    "embedding-model": ("embedding", "model"),
    "backend": ("embedding", "backend"),
    "embedding-backend": ("embedding", "backend"),
    "dtype": ("embedding", "dtype"),
    "device": ("embedding", "device"),
    "max-length": ("embedding", "max_length"),
    "reranker": ("reranker", "model"),
    "reranker-model": ("reranker", "model"),
    "reranker-backend": ("reranker", "backend"),
    "reranker-dtype": ("reranker", "dtype"),
}
_INT_FIELDS = {"dim", "rerank_top", "max_length"}


def parse_spec(spec: str) -> list[dict[str, str]]:
    """``"mode=dense,dim=256|512"`` -> [{"mode": "dense", "dim": "256"}, {"mode": "dense", "dim": "512"}]."""
    choices: list[list[tuple[str, str]]] = []
    for part in (p.strip() for p in spec.split(",")):
        key, sep, value = part.partition("=")
        key = key.strip().lower().replace("_", "-")
        if not sep or not value.strip():
            raise InvalidRequest(f"--compare {spec!r}: expected key=value pairs separated by commas")
        if key not in SPEC_KEYS:
            raise InvalidRequest(
                f"--compare {spec!r}: unknown key {key!r}; use one of {', '.join(SPEC_KEYS)}"
            )
        choices.append([(key, v.strip()) for v in value.split("|") if v.strip()])
    return [dict(combo) for combo in itertools.product(*choices)]


def apply_spec(base: EvalConfig, changes: dict[str, str]) -> EvalConfig:
    """``base`` with the spec's values (strings) applied; the label lists them."""
    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {"embedding": {}, "reranker": {}}
    for key, raw in changes.items():
        section, name = SPEC_KEYS[key]
        value: Any = _convert(key, name, raw)
        (top if not section else sections[section])[name] = value
    try:
        embedding = base.embedding.model_validate({**base.embedding.model_dump(), **sections["embedding"]})
        reranker = base.reranker.model_validate({**base.reranker.model_dump(), **sections["reranker"]})
    except ValueError as exc:
        raise InvalidRequest(f"--compare: invalid value: {' '.join(str(exc).split())}") from exc
    label = " ".join(f"{k}={v}" for k, v in changes.items())
    fields = {
        "mode": base.mode,
        "dim": base.dim,
        "instruction": base.instruction,
        "rerank_top": base.rerank_top,
    }
    return EvalConfig(**{**fields, **top}, embedding=embedding, reranker=reranker, label=label)


def _convert(key: str, name: str, raw: str) -> Any:
    if name in _INT_FIELDS:
        if name == "dim" and raw.lower() in ("full", "none"):
            return None
        if not raw.isdigit():
            raise InvalidRequest(f"--compare: {key} must be an integer, not {raw!r}")
        return int(raw)
    return raw


def expand(base: EvalConfig, specs: Sequence[str]) -> list[EvalConfig]:
    """One configuration per spec combination, in order."""
    return [apply_spec(base, changes) for spec in specs for changes in parse_spec(spec)]


_COLUMNS = [("ndcg@10", "nDCG@10"), ("recall@100", "R@100"), ("mrr@10", "MRR@10"), ("map@100", "MAP@100")]


def _cells(result: EvalResult) -> list[str]:
    rate = result.docs_per_second
    dps = "-" if rate is None else f"{rate:,.0f}" if rate >= 100 else f"{rate:.1f}"
    return [
        *(f"{result.metrics.get(key, float('nan')):.4f}" for key, _ in _COLUMNS),
        dps + (" (cached)" if result.corpus_cached else ""),
        f"{result.query_ms:.1f}",
        f"{result.index_bytes / 2**20:.1f}",
        f"{result.seconds:.1f}",
    ]


def describe(result: EvalResult) -> str:
    """A short name for a result's configuration."""
    if result.config.label:
        return result.config.label
    parts: list[str] = [result.config.mode]
    info = result.config.describe()
    for key in ("embedding_model", "dim", "reranker_model"):
        if info.get(key) is not None:
            parts.append(f"{key.split('_')[0]}={info[key]}")
    return " ".join(parts)


def table(results: Sequence[EvalResult]) -> str:
    """One row per result: quality, encode speed, per-query time, index memory, wall time."""
    header = ["configuration", *(title for _, title in _COLUMNS), "docs/s", "ms/query", "index MB", "seconds"]
    rows = [[describe(r), *_cells(r)] for r in results]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summary(result: EvalResult) -> str:
    """The readable report of a single run."""
    head = (
        f"{result.data} ({result.split}): {result.queries:,} queries"
        f" ({result.dropped_queries:,} without a positive judgement dropped), {result.docs:,} documents"
    )
    info = result.config.describe()
    config = "  ".join(f"{k}={v}" for k, v in info.items() if v is not None)
    metrics = "\n".join(
        f"  {title:<10} {result.metrics[key]:.4f}" for key, title in _COLUMNS if key in result.metrics
    )
    speed = "cached" if result.corpus_cached else "encoded"
    dps = (
        ""
        if result.docs_per_second is None
        else f"  corpus: {result.docs_per_second:,.1f} docs/s ({speed})\n"
    )
    costs = (
        f"{dps}  queries: {result.query_ms:.1f} ms/query   index: {result.index_bytes / 2**20:.1f} MB"
        f"   total: {result.seconds:.1f} s"
    )
    return f"{head}\n{config}\n{metrics}\n{costs}"
