"""Qwen3-Reranker on a CUDA GPU through vLLM, from the original checkpoint.

vLLM turns the causal LM into a one-logit classifier (``W_yes - W_no``, sigmoid) through the
documented overrides for original Qwen3 rerankers. Prompts are finesift's token ids (the
transformers model-card form from :mod:`finesift.rerank.prompts`), so there is no template drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from finesift.errors import BackendError
from finesift.hub import resolve_for
from finesift.rerank.base import RerankOutput
from finesift.rerank.prompts import PromptTokens, pair_ids
from finesift.runtime import hf
from finesift.runtime.local import LocalModel
from finesift.runtime.vllm import import_vllm
from finesift.settings import HubSettings, RerankSettings

QWEN3_RERANKER_OVERRIDES = {
    "architectures": ["Qwen3ForSequenceClassification"],
    "classifier_from_token": ["no", "yes"],
    "is_original_qwen3_reranker": True,
}


class VllmReranker(LocalModel):
    """P(yes) per pair, computed by vLLM's classifier over finesift's prompt ids."""

    def __init__(
        self, path: str | Path, *, model_id: str | None = None, max_length: int = 8192, dtype: str = "auto"
    ) -> None:
        vllm = import_vllm()
        self.path = Path(path)
        self.config = hf.read_config(self.path)
        self._max_length = hf.check_max_length(max_length, self.config)
        self._model_id = model_id or str(path)
        self.tokenizer = hf.load_tokenizer(self.path)
        self.tokens = PromptTokens.from_tokenizer(self.tokenizer)
        self.llm = _classifier(vllm, self.path, max_length=max_length, dtype=dtype)
        self._prompt = vllm.inputs.TokensPrompt

    def fingerprint(self) -> dict[str, object]:
        return {
            "model": self._model_id,
            "revision": hf.revision_of(self.path),
            "prompt": "qwen3-transformers-card",
            "max_length": self._max_length,
            "tokenizer": hf.tokenizer_hash(self.path),
        }

    def score(self, query: str, documents: Sequence[str], *, instruction: str) -> RerankOutput:
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
        outputs = self.llm.classify([self._prompt(prompt_token_ids=r) for r in rows], use_tqdm=False)
        scores = [float(o.outputs.probs[0]) for o in outputs]
        return RerankOutput(scores, [len(r) for r in rows], truncated)


def _classifier(vllm: Any, path: Path, *, max_length: int, dtype: str) -> Any:
    kwargs: dict[str, Any] = {
        "model": str(path),
        "max_model_len": max_length,
        "trust_remote_code": False,
        "dtype": "auto" if dtype == "auto" else dtype,
        "hf_overrides": QWEN3_RERANKER_OVERRIDES,
    }
    for variant in ({"runner": "pooling"}, {"task": "score"}):  # renamed across vLLM releases
        try:
            return vllm.LLM(**kwargs, **variant)
        except TypeError:
            continue
    raise BackendError("this vLLM version is not supported; install a release with the pooling runner")


def create(settings: RerankSettings, hub: HubSettings) -> VllmReranker:
    """Registry factory: resolve the original checkpoint, then start vLLM with the reranker overrides."""
    import_vllm()
    path = resolve_for(settings, hub)
    return VllmReranker(path, model_id=settings.model, max_length=settings.max_length, dtype=settings.dtype)
