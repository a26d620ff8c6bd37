"""Qwen3-Reranker through transformers: last position only, two-row yes/no head, shared prefix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from finesift.hub import resolve_for
from finesift.rerank.base import RerankOutput
from finesift.rerank.prompts import PromptTokens, head, pair_ids
from finesift.runtime import forward, hf
from finesift.runtime.batching import plan_batches, split_on_prefix
from finesift.runtime.local import HFModel
from finesift.runtime.options import EngineOptions
from finesift.settings import HubSettings, RerankSettings

DEFAULT_MAX_LENGTH = 8192
#: Below this many documents sharing a prefix, computing the prefix apart saves nothing.
MIN_SHARED_ROWS = 2


class TransformersReranker(HFModel):
    """P(yes) = sigmoid(h_last · (W_yes − W_no)) from an original Qwen3-Reranker checkpoint.

    Exactly the model card's softmax over the [no, yes] logits, without computing the other
    151,667 vocabulary logits or any position but the last. The prompt part shared by all
    documents of a query (system prefix, instruction, query) is computed once per query when
    every document's tokens start with it (checked per pair); other pairs run whole.
    """

    def __init__(  # noqa: PLR0913 - public keyword arguments kept stable; speed options grouped
        self,
        path: str | Path,
        *,
        model_id: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        max_length: int = DEFAULT_MAX_LENGTH,
        token_budget: int | None = None,
        options: EngineOptions | None = None,
    ) -> None:
        self._open(
            path, model_id=model_id, device=device, dtype=dtype, max_length=max_length, options=options
        )
        self.tokens = PromptTokens.from_tokenizer(self.tokenizer)
        lm = self._weights("AutoModelForCausalLM")
        out = lm.get_output_embeddings().weight
        with self._torch.no_grad():
            self.w_diff = (out[self.tokens.yes_id].float() - out[self.tokens.no_id].float()).contiguous()
        self._compile(lm.base_model, token_budget)

    def fingerprint(self) -> dict[str, object]:
        return {
            "model": self._model_id,
            "revision": self._revision,
            "prompt": "qwen3-transformers-card",
            "max_length": self._max_length,
            "tokenizer": hf.tokenizer_hash(self.path),
        }

    def build(self, query: str, documents: Sequence[str], *, instruction: str) -> tuple[list[list[int]], int]:
        """Prompt ids per pair and how many documents were truncated."""
        rows, truncated = [], 0
        for doc in documents:
            ids, cut = pair_ids(
                self.tokenizer,
                self.tokens,
                instruction=instruction,
                query=query,
                document=doc,
                max_length=self._max_length,
            )
            rows.append(ids)
            truncated += cut
        return rows, truncated

    def shared_prefix(self, query: str, *, instruction: str) -> list[int]:
        """Token ids every pair of this query starts with when its tokenization splits cleanly."""
        return self.tokens.prefix + self.tokenizer.encode(head(instruction, query), add_special_tokens=False)

    def score(self, query: str, documents: Sequence[str], *, instruction: str) -> RerankOutput:
        rows, truncated = self.build(query, documents, instruction=instruction)
        scores = [0.0] * len(rows)
        prefix = self.shared_prefix(query, instruction=instruction)
        shared, whole = (
            split_on_prefix(rows, prefix) if self.options.prefix_cache else ([], list(range(len(rows))))
        )
        if len(shared) < MIN_SHARED_ROWS:
            shared, whole = [], list(range(len(rows)))
        if shared:
            self._score_after_prefix(prefix, {i: rows[i][len(prefix) :] for i in shared}, scores)
        self._score_whole({i: rows[i] for i in whole}, scores)
        return RerankOutput(scores, [len(r) for r in rows], truncated)

    def score_ids(self, rows: Sequence[list[int]]) -> list[float]:
        """Scores of already built prompt ids, run whole (no prefix reuse), in input order."""
        scores = [0.0] * len(rows)
        self._score_whole(dict(enumerate(rows)), scores)
        return scores

    def _score_whole(self, rows: dict[int, list[int]], scores: list[float]) -> None:
        keys = list(rows)
        packed = self.packed is not None
        for batch in plan_batches(
            [len(rows[k]) for k in keys], token_budget=self.token_budget, packed=packed
        ):
            hidden = self._last_hidden([rows[keys[j]] for j in batch])
            for j, s in zip(batch, self._head(hidden), strict=True):
                scores[keys[j]] = s

    def _score_after_prefix(
        self, prefix: list[int], tails: dict[int, list[int]], scores: list[float]
    ) -> None:
        if self.packed is not None:
            self._score_packed_after_prefix(prefix, tails, scores)
            return
        cached = forward.SharedPrefix(self.model, prefix, device=self.device)
        keys = list(tails)
        # The budget counts the prefix too: every row attends to it, so memory grows with it.
        widths = [len(prefix) + len(tails[k]) for k in keys]
        for batch in plan_batches(widths, token_budget=self.token_budget):
            hidden = forward.last_hidden_after_prefix(
                self.model,
                cached,
                [tails[keys[j]] for j in batch],
                pad_id=self.tokenizer.pad_token_id,
                device=self.device,
            )
            for j, s in zip(batch, self._head(hidden), strict=True):
                scores[keys[j]] = s

    def _score_packed_after_prefix(
        self, prefix: list[int], tails: dict[int, list[int]], scores: list[float]
    ) -> None:
        """Packed tails after a prefix computed once; attention memory is per row, so the budget
        counts tail tokens only."""
        cached = self.packed.prefix(prefix)
        keys = list(tails)
        for batch in plan_batches([len(tails[k]) for k in keys], token_budget=self.token_budget, packed=True):
            hidden = self.packed.last_hidden_after(cached, [tails[keys[j]] for j in batch])
            for j, s in zip(batch, self._head(hidden), strict=True):
                scores[keys[j]] = s

    def _head(self, hidden: Any) -> list[float]:
        """sigmoid(h · (W_yes − W_no)) per row, computed in fp32."""
        torch = self._torch
        with torch.inference_mode():
            scores: list[float] = torch.sigmoid(hidden.float() @ self.w_diff).cpu().tolist()
        return scores


def create(settings: RerankSettings, hub: HubSettings) -> TransformersReranker:
    """Registry factory: resolve the model through the hub, then load it."""
    path = resolve_for(settings, hub)
    return TransformersReranker(
        path,
        model_id=settings.model,
        device=settings.device,
        dtype=settings.dtype,
        max_length=settings.max_length,
        token_budget=settings.token_budget,
        options=EngineOptions(
            attention=settings.attention,
            quantize=settings.quantize,
            prefix_cache=settings.prefix_cache,
            forward=settings.forward,
            fuse=settings.fuse,
        ),
    )
