"""What the llama.cpp backends ask llama.cpp to compute: the LM head for the last token only.

In embedding mode llama.cpp outputs every token of a batch (the 151,669-row LM head per token, its
logits copied out and dropped), so the embedder decodes the prefix with embeddings off and no
output, then the last token alone in embedding mode. The reranker reads the logits of the last
token only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from finesift.doctor.probes import PROBES

pytest.importorskip("llama_cpp")
pytest.importorskip("gguf")
pytestmark = pytest.mark.slow


def _record_decodes(
    monkeypatch: pytest.MonkeyPatch, llm: Any, llama_cpp: Any
) -> list[tuple[bool, list[bool]]]:
    """(embedding mode, per-token output flags) of every decode from now on."""
    seen: list[tuple[bool, list[bool]]] = []
    mode = {"embeddings": bool(llm.context_params.embeddings)}
    set_embeddings, decode = llama_cpp.llama_set_embeddings, llm._ctx.decode

    def recording_set(ctx: Any, value: bool) -> None:
        mode["embeddings"] = bool(value)
        set_embeddings(ctx, value)

    def recording_decode(batch: Any) -> None:
        flags = [bool(batch.batch.logits[i]) for i in range(batch.batch.n_tokens)]
        seen.append((mode["embeddings"], flags))
        decode(batch)

    monkeypatch.setattr(llama_cpp, "llama_set_embeddings", recording_set)
    monkeypatch.setattr(llm._ctx, "decode", recording_decode)
    return seen


def test_the_embedder_outputs_only_the_last_token_and_its_vector_is_unchanged(tiny_gguf, monkeypatch) -> None:
    from finesift.embedding.llamacpp import LlamaCppEmbedder
    from finesift.testing.llamacpp import one_shot_embedding

    backend = LlamaCppEmbedder(tiny_gguf("embedding"), max_length=512)
    ids = backend._tokens(PROBES.documents[0])
    want = one_shot_embedding(backend, ids)
    seen = _record_decodes(monkeypatch, backend.llm, backend.llama_cpp)
    got = backend._decode(ids)
    assert seen == [(False, [False] * (len(ids) - 1)), (True, [True])]
    assert float(got @ want / np.linalg.norm(got) / np.linalg.norm(want)) > 0.9999
    seen.clear()
    backend._decode(ids[-1:])  # a text of one token: no prefix decode
    assert seen == [(True, [True])]


def test_the_reranker_asks_for_the_last_tokens_logits_only(tiny_gguf, monkeypatch) -> None:
    from finesift.rerank.llamacpp import LlamaCppReranker

    backend = LlamaCppReranker(tiny_gguf("reranker"), max_length=512)
    assert not backend.llm.context_params.embeddings
    seen = _record_decodes(monkeypatch, backend.llm, backend.llama_cpp)
    query, docs = PROBES.rerank[0]
    backend.score(query.text, list(docs[:2]), instruction="Given a query, find relevant passages")
    assert seen and all(not embeddings and flags[-1] and not any(flags[:-1]) for embeddings, flags in seen)
