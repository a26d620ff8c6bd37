"""Qwen3-Embedding GGUF files through llama.cpp: last-token pooling, EOS appended, no truncation surprise.

The file's metadata is overridden at load time so that the EOS is appended and the pooling is
last-token even for GGUFs converted before those were right; the EOS is then verified. Every
text is decoded alone (no batch neighbours), truncated like the reference with the EOS kept last.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from finesift.embedding.base import EmbeddingOutput
from finesift.embedding.local import LocalEmbedder
from finesift.errors import BackendError
from finesift.hub import gguf_file_for
from finesift.runtime import llamacpp
from finesift.settings import EmbeddingSettings, HubSettings

EOS_ID = 151643  # <|endoftext|>


class LlamaCppEmbedder(LocalEmbedder):
    """Raw last-token vectors from a Qwen3-Embedding GGUF (F16, Q8_0, Q5_K_M, Q4_K_M, ...)."""

    def __init__(
        self, path: str | Path, *, model_id: str | None = None, max_length: int = 8192, n_gpu_layers: int = 0
    ) -> None:
        self.llama_cpp = llamacpp.import_llama_cpp()
        self.path = llamacpp.gguf_path(str(path))
        self._model_id = model_id or str(path)
        self._max_length = max_length
        overrides = {
            "tokenizer.ggml.add_eos_token": True,
            "tokenizer.ggml.eos_token_id": EOS_ID,
            "tokenizer.ggml.add_bos_token": False,
        }
        self.llm = llamacpp.load(
            self.path,
            context=max_length,
            embedding=True,
            n_gpu_layers=n_gpu_layers,
            pooling_type=self.llama_cpp.LLAMA_POOLING_TYPE_LAST,
            kv_overrides=overrides,
        )
        self._dimension = int(self.llm.n_embd())
        self.eos_id = self._check_eos()

    def _check_eos(self) -> int:
        ids = self._tokens("finesift probe")
        if not ids or ids[-1] != EOS_ID:
            raise BackendError(
                f"{self.path} does not append <|endoftext|> (id {EOS_ID}) to each text, so its vectors "
                "would be wrong; re-convert it with `finesift gguf convert` from the original checkpoint"
            )
        return EOS_ID

    def _tokens(self, text: str) -> list[int]:
        ids: list[int] = self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        return ids

    def fingerprint(self) -> dict[str, object]:
        return {
            "model": self._model_id,
            "revision": llamacpp.file_digest(self.path),
            "dimension": self.dimension,
            "pooling": "last_token",
            "normalized": True,
            "max_length": self._max_length,
            "tokenizer": "gguf",
        }

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(self._tokens(t)) for t in texts]

    def embed(self, texts: Sequence[str]) -> EmbeddingOutput:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        counts, truncated = [], 0
        for row, text in enumerate(texts):
            ids = self._tokens(text)
            if len(ids) > self._max_length:
                ids, truncated = [*ids[: self._max_length - 1], self.eos_id], truncated + 1
            out[row] = self._decode(ids)
            counts.append(len(ids))
        return EmbeddingOutput(out, counts, truncated)

    def _decode(self, ids: list[int]) -> np.ndarray:
        """The last token's final hidden state, without the LM head over the other tokens.

        In embedding mode llama.cpp (0.3.16) outputs every token of a batch, so the
        151,669-row LM head runs per token and its logits are copied out, then dropped. The
        prefix is therefore decoded with embeddings off and no token marked as output (the last
        layer's feed-forward and the head see zero rows), then the last token alone with
        embeddings on: its last-token pooling reads the same cached keys and values, so the
        vector is the one-shot decode's.
        """
        llm: Any = self.llm
        try:
            llm._ctx.kv_cache_clear()
            if len(ids) > 1:
                self._run(ids[:-1], start=0, embeddings=False)
            self._run(ids[-1:], start=len(ids) - 1, embeddings=True)
            pointer = self.llama_cpp.llama_get_embeddings_seq(llm._ctx.ctx, 0)
            vector = np.array(pointer[: self.dimension], dtype=np.float32)
        except AttributeError as exc:
            raise BackendError(
                "this llama-cpp-python version is not supported; install finesift[llamacpp]"
            ) from exc
        finally:
            llm._batch.reset()
        return vector

    def _run(self, ids: list[int], *, start: int, embeddings: bool) -> None:
        """Decode ``ids`` at positions ``start...`` of sequence 0; with ``embeddings`` the
        last token is the one output, else no token is."""
        llm: Any = self.llm
        batch = llm._batch.batch
        batch.n_tokens = len(ids)
        for i, token in enumerate(ids):
            batch.token[i] = token
            batch.pos[i] = start + i
            batch.seq_id[i][0] = 0
            batch.n_seq_id[i] = 1
            batch.logits[i] = False
        batch.logits[len(ids) - 1] = embeddings
        self.llama_cpp.llama_set_embeddings(llm._ctx.ctx, embeddings)
        llm._ctx.decode(llm._batch)


def create(settings: EmbeddingSettings, hub: HubSettings) -> LlamaCppEmbedder:
    """Registry factory: ``settings.model`` is a ``.gguf`` file, a GGUF hub repository
    or ``ollama:NAME:TAG``."""
    return LlamaCppEmbedder(
        llamacpp.locate(settings.model, hub.ollama_models)
        if settings.model.startswith("ollama:")
        else gguf_file_for(settings, hub),
        model_id=settings.model,
        max_length=settings.max_length,
        n_gpu_layers=settings.n_gpu_layers,
    )
