"""Every optional backend fails with MissingDependency naming its extra when its package is absent."""

from __future__ import annotations

import sys

import pytest

from finesift.embedding.registry import create_backend as create_embedding
from finesift.errors import MissingDependency
from finesift.rerank.registry import create_backend as create_rerank
from finesift.settings import EmbeddingSettings, RerankSettings


@pytest.mark.parametrize(
    ("module", "backend", "extra"),
    [
        ("vllm", "vllm", "vllm"),
        ("llama_cpp", "llamacpp", "llamacpp"),
        ("httpx", "openai", "openai"),
        ("httpx", "ollama", "ollama"),
    ],
)
def test_embedding_backends_name_their_extra(monkeypatch, module: str, backend: str, extra: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    settings = EmbeddingSettings(model="/models/x.gguf", backend=backend, url="http://127.0.0.1:1")
    with pytest.raises(MissingDependency, match=rf"finesift\[{extra}\]") as info:
        create_embedding(settings)
    assert info.value.extra == extra


@pytest.mark.parametrize(
    ("module", "backend", "extra"),
    [("vllm", "vllm", "vllm"), ("llama_cpp", "llamacpp", "llamacpp"), ("httpx", "remote", "remote")],
)
def test_rerank_backends_name_their_extra(monkeypatch, module: str, backend: str, extra: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    settings = RerankSettings(model="/models/x.gguf", backend=backend, url="http://127.0.0.1:1")
    with pytest.raises(MissingDependency, match=rf"finesift\[{extra}\]"):
        create_rerank(settings)


def test_gguf_conversion_names_its_extra(monkeypatch, tmp_path) -> None:
    from finesift.runtime.gguf import convert

    monkeypatch.setitem(sys.modules, "gguf", None)
    (tmp_path / "config.json").write_text('{"model_type": "qwen3"}')
    with pytest.raises(MissingDependency, match=r"finesift\[gguf\]"):
        convert(tmp_path, tmp_path / "x.gguf", kind="embedding")


def test_auto_backend_choice() -> None:
    from finesift.embedding.registry import choose_backend as embed_choice
    from finesift.rerank.registry import choose_backend as rerank_choice

    assert embed_choice(EmbeddingSettings(model="/m/q.Q4_K_M.gguf")) == "llamacpp"
    assert embed_choice(EmbeddingSettings(model="m", url="http://h")) == "openai"
    assert rerank_choice(RerankSettings(model="/m/r.gguf")) == "llamacpp"
    assert rerank_choice(RerankSettings(model="m", url="http://h")) == "remote"
    assert rerank_choice(RerankSettings(model="Qwen/Qwen3-Reranker-0.6B")) == "transformers"
