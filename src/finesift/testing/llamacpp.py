"""llama.cpp's plain embedding decode, the reference for the ``llamacpp`` embedder's two-step one.

One batch in embedding mode with every token an output, as ``Llama.embed`` does and as finesift's
backend did before it stopped running the LM head over every token.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def one_shot_embedding(backend: Any, ids: list[int]) -> np.ndarray:
    """The pooled (last-token) vector of ``ids`` from one decode of a ``LlamaCppEmbedder``'s model;
    (dimension,) float32, not normalised."""
    llm, llama_cpp = backend.llm, backend.llama_cpp
    llm._batch.reset()
    llm._batch.add_sequence(ids, 0, True)
    llm._ctx.kv_cache_clear()
    llama_cpp.llama_set_embeddings(llm._ctx.ctx, True)
    try:
        llm._ctx.decode(llm._batch)
        pointer = llama_cpp.llama_get_embeddings_seq(llm._ctx.ctx, 0)
        return np.array(pointer[: backend.dimension], dtype=np.float32)
    finally:
        llm._batch.reset()
