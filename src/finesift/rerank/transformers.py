"""Qwen3-Reranker through transformers: last position only, two-row yes/no head."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from finesift.hub import resolve_model
from finesift.rerank.base import RerankOutput
from finesift.rerank.prompts import PromptTokens, pair_ids
from finesift.runtime import hf
from finesift.runtime.batching import default_token_budget, plan_batches
from finesift.runtime.device import torch_device_and_dtype
from finesift.settings import HubSettings, RerankSettings

DEFAULT_MAX_LENGTH = 8192


class TransformersReranker:
    """P(yes) = sigmoid(h_last · (W_yes − W_no)) from an original Qwen3-Reranker checkpoint.

    Exactly the model card's softmax over the [no, yes] logits, without computing the other
    151,667 vocabulary logits or any position but the last.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        model_id: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        max_length: int = DEFAULT_MAX_LENGTH,
        token_budget: int | None = None,
    ) -> None:
        torch, transformers = hf.import_torch_stack()
        self.path = Path(path)
        self.config = hf.read_config(self.path)
        self._max_length = hf.check_max_length(max_length, self.config)
        self._model_id = model_id or str(path)
        self.device, self.torch_dtype = torch_device_and_dtype(device, dtype)
        self.tokenizer = hf.load_tokenizer(self.path)
        self.tokens = PromptTokens.from_tokenizer(self.tokenizer)
        lm = hf.load_weights(
            transformers.AutoModelForCausalLM, self.path, device=self.device, dtype=self.torch_dtype
        )
        head = lm.get_output_embeddings().weight
        with torch.no_grad():
            self.w_diff = (head[self.tokens.yes_id].float() - head[self.tokens.no_id].float()).contiguous()
        self.model = lm.get_decoder()
        self.token_budget = token_budget or default_token_budget(self.device)
        self._torch = torch
        self._revision = hf.revision_of(self.path)

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def max_length(self) -> int:
        return self._max_length

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

    def score(self, query: str, documents: Sequence[str], *, instruction: str) -> RerankOutput:
        rows, truncated = self.build(query, documents, instruction=instruction)
        lengths = [len(r) for r in rows]
        scores = [0.0] * len(rows)
        for batch in plan_batches(lengths, token_budget=self.token_budget):
            for i, s in zip(batch, self._forward([rows[i] for i in batch]), strict=True):
                scores[i] = s
        return RerankOutput(scores, lengths, truncated)

    def _forward(self, rows: list[list[int]]) -> list[float]:
        torch = self._torch
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=self.device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=self.device)
        with torch.inference_mode():
            hidden = self.model(input_ids=input_ids, attention_mask=mask).last_hidden_state[:, -1]
            logit = hidden.float() @ self.w_diff
            return torch.sigmoid(logit).cpu().tolist()


def create(settings: RerankSettings, hub: HubSettings) -> TransformersReranker:
    """Registry factory: resolve the model through the hub, then load it."""
    path = resolve_model(
        settings.model,
        hub=hub.source,
        revision=settings.revision,
        cache_dir=hub.cache_dir,
        offline=hub.offline,
    )
    return TransformersReranker(
        path,
        model_id=settings.model,
        device=settings.device,
        dtype=settings.dtype,
        max_length=settings.max_length,
        token_budget=settings.token_budget,
    )
