"""Qwen3-Reranker GGUF files through llama.cpp: the model card's prompt, P(yes) from the last logits.

The GGUF is the plain causal LM (as `finesift gguf convert --kind reranker` writes it). Prompts are
built by :mod:`finesift.rerank.prompts` with the GGUF's own vocabulary, so the template and the
document-only truncation are the same as every other local backend. Pairs that share a prefix
(one query, many documents) reuse its key/value cache, which is exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from finesift.errors import BackendError
from finesift.hub import gguf_file_for
from finesift.rerank.base import RerankOutput
from finesift.rerank.prompts import PromptTokens, pair_ids
from finesift.runtime import llamacpp
from finesift.runtime.local import LocalModel
from finesift.settings import HubSettings, RerankSettings


class LlamaCppReranker(LocalModel):
    """P(yes) = sigmoid(logit_yes - logit_no) at the last position of the Qwen3 reranker prompt."""

    def __init__(
        self, path: str | Path, *, model_id: str | None = None, max_length: int = 8192, n_gpu_layers: int = 0
    ) -> None:
        self.llama_cpp = llamacpp.import_llama_cpp()
        self.path = llamacpp.gguf_path(str(path))
        self._model_id = model_id or str(path)
        self._max_length = max_length
        self.llm = llamacpp.load(
            self.path, context=max_length, embedding=False, n_gpu_layers=n_gpu_layers, logits_all=False
        )
        self.tokenizer = llamacpp.LlamaTokenizer(self.llm)
        self.tokens = PromptTokens.from_tokenizer(self.tokenizer)

    def fingerprint(self) -> dict[str, object]:
        return {
            "model": self._model_id,
            "revision": llamacpp.file_digest(self.path),
            "prompt": "qwen3-transformers-card",
            "max_length": self._max_length,
            "tokenizer": "gguf",
        }

    def score(self, query: str, documents: Sequence[str], *, instruction: str) -> RerankOutput:
        scores, lengths, truncated = [], [], 0
        for doc in documents:
            ids, cut = pair_ids(
                self.tokenizer,
                self.tokens,
                instruction=instruction,
                query=query,
                document=doc,
                max_length=self._max_length,
            )
            scores.append(self._score(ids))
            lengths.append(len(ids))
            truncated += cut
        return RerankOutput(scores, lengths, truncated)

    def _score(self, ids: list[int]) -> float:
        llm: Any = self.llm
        try:
            kept = _common_prefix(llm.input_ids[: llm.n_tokens].tolist(), ids)
            llm.n_tokens = min(kept, len(ids) - 1)  # re-evaluate at least the last token for its logits
            llm.eval(ids[llm.n_tokens :])
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
        except AttributeError as exc:
            raise BackendError(
                "this llama-cpp-python version is not supported; install finesift[llamacpp]"
            ) from exc
        diff = float(logits[self.tokens.yes_id]) - float(logits[self.tokens.no_id])
        return 1.0 / (1.0 + math.exp(-diff)) if diff > -700 else 0.0


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def create(settings: RerankSettings, hub: HubSettings) -> LlamaCppReranker:
    """Registry factory: ``settings.model`` is a ``.gguf`` file of the reranker, a GGUF
    hub repository or ``ollama:NAME:TAG``."""
    return LlamaCppReranker(
        llamacpp.locate(settings.model, hub.ollama_models)
        if settings.model.startswith("ollama:")
        else gguf_file_for(settings, hub),
        model_id=settings.model,
        max_length=settings.max_length,
        n_gpu_layers=settings.n_gpu_layers,
    )
