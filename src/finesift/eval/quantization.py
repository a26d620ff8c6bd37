"""The quantization report: which GGUF type and which Matryoshka dimension to use for *this* corpus.

For one Qwen3-Embedding checkpoint and one BEIR folder, every chosen GGUF type (converted once and
cached, or a given ``.gguf`` file / GGUF hub repository) runs through the llama.cpp backend and the
eval harness, next to the transformers fp32 reference. Per type and dimension: nDCG@10, how far
the vectors are from fp32 (mean and minimum cosine over queries and documents; the largest
|Δ| of a query-document similarity), the bytes the corpus vectors take (float32), the GGUF file's
bytes and the corpus encoding speed in tokens per second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from finesift.embedding.embedder import slice_and_normalise, validate_dim
from finesift.eval.config import EvalConfig
from finesift.eval.datasets import BeirDataset
from finesift.eval.runner import Evaluator
from finesift.hub import gguf_file_for
from finesift.runtime.gguf import FILE_TYPES, REPORT_TYPES, cached_conversion
from finesift.settings import EmbeddingSettings

REFERENCE = "fp32"
#: Queries x documents similarities compared per block (bounds memory on large corpora).
_BLOCK = 256


@dataclass(frozen=True)
class QuantRow:
    """One (type, dimension) of the report; the reference row has cosine 1 and |Δ| 0."""

    file_type: str
    dim: int
    ndcg_at_10: float
    cos_mean: float
    cos_min: float
    max_delta: float
    vector_bytes: int
    model_bytes: int
    tokens_per_s: float | None

    def to_json(self) -> dict[str, Any]:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class QuantReportSpec:
    """What to compare: GGUF ``types`` (names of :data:`FILE_TYPES`, ``.gguf`` files or GGUF hub
    references) and Matryoshka ``dims`` (``None``: the model's full dimension)."""

    model: str
    types: Sequence[str] = REPORT_TYPES
    dims: Sequence[int | None] = (None,)
    max_length: int = 8192
    gguf_dir: Path = Path("gguf")


def quantization_report(spec: QuantReportSpec, data: BeirDataset, evaluator: Evaluator) -> list[QuantRow]:
    """Rows for the reference, then each type, each at every dimension of ``spec.dims``."""
    reference = EmbeddingSettings(
        model=spec.model, backend="transformers", dtype="float32", device="cpu", max_length=spec.max_length
    )
    ref_q, ref_d, ref_seconds = evaluator.vectors(data, EvalConfig(embedding=reference))
    dims = [validate_dim(d, ref_d.shape[1]) for d in spec.dims]
    tokens = sum(evaluator.embedder(reference).count_tokens(data.doc_texts))
    ctx = _Context(data, evaluator, dims, tokens, {dim: _sliced(ref_q, ref_d, dim) for dim in dims})
    rows = ctx.rows(REFERENCE, reference, _checkpoint_bytes(spec.model), (ref_q, ref_d, ref_seconds))
    for file_type in spec.types:
        path = _gguf(spec, file_type, evaluator)
        settings = reference.model_copy(update={"model": path, "backend": "llamacpp", "dtype": "auto"})
        rows += ctx.rows(file_type, settings, Path(path).stat().st_size)
    return rows


@dataclass(frozen=True)
class _Context:
    """What every row shares: the data, the harness, the dimensions, the corpus's token count and the
    reference vectors sliced to each dimension."""

    data: BeirDataset
    evaluator: Evaluator
    dims: list[int]
    tokens: int
    reference: dict[int, tuple[np.ndarray, np.ndarray]]

    def rows(
        self,
        label: str,
        settings: EmbeddingSettings,
        model_bytes: int,
        vectors: tuple[np.ndarray, np.ndarray, float] | None = None,
    ) -> list[QuantRow]:
        queries, docs, seconds = vectors or self.evaluator.vectors(self.data, EvalConfig(embedding=settings))
        out = []
        for dim in self.dims:
            result = self.evaluator.run(self.data, EvalConfig(mode="dense", embedding=settings, dim=dim))
            q, d = _sliced(queries, docs, dim)
            cos_mean, cos_min, delta = _fidelity(q, d, *self.reference[dim])
            out.append(
                QuantRow(
                    file_type=label,
                    dim=dim,
                    ndcg_at_10=result.metrics["ndcg@10"],
                    cos_mean=cos_mean,
                    cos_min=cos_min,
                    max_delta=delta,
                    vector_bytes=int(d.shape[0] * dim * np.dtype(np.float32).itemsize),
                    model_bytes=model_bytes,
                    tokens_per_s=self.tokens / seconds if seconds > 0 else None,
                )
            )
        return out


def _sliced(queries: np.ndarray, docs: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    if dim == docs.shape[1]:
        return queries, docs
    return slice_and_normalise(queries, dim), slice_and_normalise(docs, dim)


def _fidelity(
    q: np.ndarray, d: np.ndarray, ref_q: np.ndarray, ref_d: np.ndarray
) -> tuple[float, float, float]:
    """Mean and minimum row cosine to the reference over queries and documents; the largest
    |difference| of a query-document similarity."""
    cosines = np.concatenate([np.sum(q * ref_q, axis=1), np.sum(d * ref_d, axis=1)])
    delta = 0.0
    for start in range(0, q.shape[0], _BLOCK):
        got = q[start : start + _BLOCK] @ d.T
        want = ref_q[start : start + _BLOCK] @ ref_d.T
        delta = max(delta, float(np.max(np.abs(got - want))))
    return float(np.mean(cosines)), float(np.min(cosines)), delta


def _gguf(spec: QuantReportSpec, file_type: str, evaluator: Evaluator) -> str:
    """A type name is converted from the checkpoint once; anything else is a GGUF file or hub reference."""
    if file_type.lower() in FILE_TYPES:
        return str(cached_conversion(spec.model, spec.gguf_dir, kind="embedding", file_type=file_type))
    return gguf_file_for(EmbeddingSettings(model=file_type, backend="llamacpp"), evaluator.hub)


def _checkpoint_bytes(model: str) -> int:
    return sum(p.stat().st_size for p in Path(model).expanduser().glob("*.safetensors"))


_COLUMNS = (
    ("type", 7),
    ("dim", 5),
    ("nDCG@10", 8),
    ("cos mean", 9),
    ("cos min", 8),
    ("max |Δ|", 8),
    ("vectors MB", 10),
    ("model MB", 9),
    ("tok/s", 8),
)


def report_table(rows: Sequence[QuantRow]) -> str:
    """The report as one fixed-width table."""
    lines = [
        "  ".join(name.rjust(width) if i else name.ljust(width) for i, (name, width) in enumerate(_COLUMNS))
    ]
    lines.append("  ".join("-" * width for _, width in _COLUMNS))
    for r in rows:
        speed = "-" if r.tokens_per_s is None else f"{r.tokens_per_s:,.0f}"
        cells = [
            r.file_type.ljust(7),
            f"{r.dim:5d}",
            f"{r.ndcg_at_10:8.4f}",
            f"{r.cos_mean:9.5f}",
            f"{r.cos_min:8.5f}",
            f"{r.max_delta:8.5f}",
            f"{r.vector_bytes / 2**20:10.2f}",
            f"{r.model_bytes / 2**20:9.1f}",
            speed.rjust(8),
        ]
        lines.append("  ".join(cells))
    return "\n".join(lines)
