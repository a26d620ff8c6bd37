"""Wrapper backends that reproduce the bugs other runtimes have shipped, one fault each.

They wrap the transformers backends (reusing their tokenizer and weights) and change exactly one
thing. Tests inject them to prove each diagnosis; the doctor also runs some of them on the
reference model as hypotheses ("does the backend behave like the reference with mean pooling?").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from finesift.embedding.base import EmbeddingOutput, QueryFormat
from finesift.embedding.embedder import Embedder, Embeddings, validate_dim
from finesift.rerank.base import RerankOutput
from finesift.rerank.prompts import PREFIX, SUFFIX


class _EmbeddingFault:
    """Delegates the backend contract to ``base``; subclasses replace the forward pass."""

    fault = "none"

    def __init__(self, base: Any) -> None:
        self.base = base

    @property
    def model_id(self) -> str:
        return f"{self.base.model_id}+{self.fault}"

    @property
    def dimension(self) -> int:
        return int(self.base.dimension)

    @property
    def max_length(self) -> int:
        return int(self.base.max_length)

    @property
    def query_format(self) -> QueryFormat:
        fmt: QueryFormat = self.base.query_format
        return fmt

    def fingerprint(self) -> dict[str, object]:
        return {**self.base.fingerprint(), "fault": self.fault}

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        counts: list[int] = self.base.count_tokens(texts)
        return counts

    def ids(self, texts: Sequence[str]) -> list[list[int]]:
        ids, _, _ = self.base.tokenize(texts)
        return [list(r) for r in ids]

    def embed(self, texts: Sequence[str]) -> EmbeddingOutput:
        rows = self.ids(texts)
        return EmbeddingOutput(self.forward(rows), [len(r) for r in rows], 0)

    def forward(self, rows: list[list[int]]) -> np.ndarray:
        out: np.ndarray = self.base._forward(rows)
        return out

    def hidden(self, rows: list[list[int]], *, left: bool) -> tuple[Any, Any]:
        """Last hidden states (n, width, h) and the mask, padded on the chosen side."""
        torch, width, pad = self.base._torch, max(len(r) for r in rows), self.base.tokenizer.pad_token_id
        fill = [[pad] * (width - len(r)) for r in rows]
        ids = [f + r if left else r + f for f, r in zip(fill, rows, strict=True)]
        ones = [[1] * len(r) for r in rows]
        mask = [[0] * len(f) + o if left else o + [0] * len(f) for f, o in zip(fill, ones, strict=True)]
        input_ids = torch.tensor(ids, device=self.base.device)
        attention = torch.tensor(mask, device=self.base.device)
        with torch.inference_mode():
            hidden = self.base.model(input_ids=input_ids, attention_mask=attention).last_hidden_state
        return hidden.float(), attention


class MissingEosEmbedder(_EmbeddingFault):
    """Tokenizes without the trailing ``<|endoftext|>`` (old GGUFs, fastembed #528, llama.cpp #14234)."""

    fault = "missing_eos"

    def ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [r[:-1] if len(r) > 1 and r[-1] == self.base.eos_id else r for r in super().ids(texts)]


class RightPaddingEmbedder(_EmbeddingFault):
    """Pads on the right and pools ``[:, -1]``: shorter rows of a batch pool a pad token (TEI #642)."""

    fault = "right_padding"

    def forward(self, rows: list[list[int]]) -> np.ndarray:
        hidden, _ = self.hidden(rows, left=False)
        out: np.ndarray = hidden[:, -1].cpu().numpy()
        return out


class MeanPoolingEmbedder(_EmbeddingFault):
    """Mean pooling over the real tokens instead of the last token."""

    fault = "mean_pooling"

    def forward(self, rows: list[list[int]]) -> np.ndarray:
        hidden, mask = self.hidden(rows, left=True)
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        out: np.ndarray = ((hidden * weights).sum(1) / weights.sum(1)).cpu().numpy()
        return out


class TruncatingEmbedder(_EmbeddingFault):
    """Keeps only the first ``limit`` tokens, EOS lost (llama.cpp with ``-ub 512``)."""

    fault = "truncation"

    def __init__(self, base: Any, limit: int = 512) -> None:
        super().__init__(base)
        self.limit = limit

    def ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [r[: self.limit] for r in super().ids(texts)]


class NoInstructionEmbedder(_EmbeddingFault):
    """Claims raw queries, so the Qwen3 instruction is never applied."""

    fault = "no_instruction"

    @property
    def query_format(self) -> QueryFormat:
        return "none"


class NanEmbedder(_EmbeddingFault):
    """Every vector is NaN (fp16 overflow)."""

    fault = "nan"

    def forward(self, rows: list[list[int]]) -> np.ndarray:
        return np.full((len(rows), self.dimension), np.nan, dtype=np.float32)


class NormaliseBeforeSliceEmbedder(Embedder):
    """An :class:`Embedder` that L2-normalises the full vector, then slices and stops (norms < 1)."""

    def encode(
        self,
        texts: Sequence[str],
        *,
        input_type: Any,
        instruction: str | None = None,
        dim: int | None = None,
        on_overflow: Any = None,
    ) -> Embeddings:
        full = super().encode(texts, input_type=input_type, instruction=instruction, on_overflow=on_overflow)
        size = validate_dim(dim, self.dimension)
        return Embeddings(np.ascontiguousarray(full.vectors[:, :size]), full.tokens, full.truncated)


class _RerankFault:
    """Delegates the reranker contract to a transformers reranker ``base``."""

    fault = "none"

    def __init__(self, base: Any) -> None:
        self.base = base

    @property
    def model_id(self) -> str:
        return f"{self.base.model_id}+{self.fault}"

    @property
    def max_length(self) -> int:
        return int(self.base.max_length)

    def fingerprint(self) -> dict[str, object]:
        return {**self.base.fingerprint(), "fault": self.fault}

    def score(self, query: str, documents: Sequence[str], *, instruction: str) -> RerankOutput:
        rows = self.rows(query, documents, instruction=instruction)
        scores = [float(s) for s in self.base.score_ids(rows)]
        return RerankOutput(self.transform(scores), [len(r) for r in rows], 0)

    def rows(self, query: str, documents: Sequence[str], *, instruction: str) -> list[list[int]]:
        rows, _ = self.base.build(query, documents, instruction=instruction)
        return [list(r) for r in rows]

    def transform(self, scores: list[float]) -> list[float]:
        return scores


class TemplateDriftReranker(_RerankFault):
    """The chat-template form with blank lines between the parts (vLLM #24242, Qwen3-Embedding #71)."""

    fault = "template_drift"

    def rows(self, query: str, documents: Sequence[str], *, instruction: str) -> list[list[int]]:
        tok = self.base.tokenizer
        texts = [
            f"{PREFIX}<Instruct>: {instruction}\n\n<Query>: {query}\n\n<Document>: {d}{SUFFIX}"
            for d in documents
        ]
        return [tok.encode(t, add_special_tokens=False)[-self.max_length :] for t in texts]


class TruncatedSuffixReranker(_RerankFault):
    """Cuts the whole prompt at ``limit`` tokens, losing the assistant suffix on long pairs."""

    fault = "truncated_suffix"

    def __init__(self, base: Any, limit: int = 512) -> None:
        super().__init__(base)
        self.limit = limit

    def rows(self, query: str, documents: Sequence[str], *, instruction: str) -> list[list[int]]:
        return [r[: self.limit] for r in super().rows(query, documents, instruction=instruction)]


class SwappedYesNoReranker(_RerankFault):
    """Reads P(no) instead of P(yes) (a swapped yes/no pair in a conversion script)."""

    fault = "swapped_yes_no"

    def transform(self, scores: list[float]) -> list[float]:
        return [1.0 - s for s in scores]


class ConstantReranker(_RerankFault):
    """Degenerate output: every score ``value`` (0.5: no yes/no head; ~0: wrong logits; NaN)."""

    def __init__(self, base: Any, value: float) -> None:
        super().__init__(base)
        self.value = value
        self.fault = "nan" if value != value else f"constant_{value:g}"

    def transform(self, scores: list[float]) -> list[float]:
        return [self.value + 1e-4 * (i % 3) * (self.value == self.value) for i in range(len(scores))]


EMBEDDING_FAULTS: dict[str, Any] = {
    "missing_eos": MissingEosEmbedder,
    "right_padding": RightPaddingEmbedder,
    "mean_pooling": MeanPoolingEmbedder,
    "truncation": TruncatingEmbedder,
    "no_instruction": NoInstructionEmbedder,
    "nan": NanEmbedder,
}
RERANK_FAULTS: dict[str, Any] = {
    "template_drift": TemplateDriftReranker,
    "truncated_suffix": TruncatedSuffixReranker,
    "swapped_yes_no": SwappedYesNoReranker,
    "constant_half": lambda base: ConstantReranker(base, 0.5),
    "constant_zero": lambda base: ConstantReranker(base, 1e-4),
    "nan": lambda base: ConstantReranker(base, float("nan")),
}
