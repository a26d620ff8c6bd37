"""Model resolution: local directories need no network; missing hub models give one clear message."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from finesift.errors import InvalidRequest, MissingDependency, NotFound
from finesift.hub import looks_like_hub_id, resolve_model


def test_local_directory_is_used_as_is(tmp_path: Path) -> None:
    assert resolve_model(str(tmp_path)) == tmp_path.resolve()


def test_not_a_path_nor_an_id(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="neither an existing directory nor a hub id"):
        resolve_model(str(tmp_path / "missing" / "dir"))


def test_hub_id_shape() -> None:
    assert looks_like_hub_id("Qwen/Qwen3-Embedding-0.6B")
    assert (
        not looks_like_hub_id("./local/dir") and not looks_like_hub_id("a/b/c") and not looks_like_hub_id("x")
    )


def test_offline_missing_model_says_how_to_download(tmp_path: Path) -> None:
    pytest.importorskip("huggingface_hub")
    with pytest.raises(NotFound) as info:
        resolve_model("Qwen/Qwen3-Embedding-0.6B", cache_dir=str(tmp_path), offline=True)
    message = str(info.value)
    assert "huggingface-cli download Qwen/Qwen3-Embedding-0.6B" in message
    assert "pass its path" in message


def test_hf_offline_env_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(NotFound, match="offline mode"):
        resolve_model("Qwen/Qwen3-Reranker-0.6B", cache_dir=str(tmp_path))


def test_modelscope_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "modelscope", None)
    with pytest.raises(MissingDependency, match=r"finesift\[modelscope\]"):
        resolve_model("Qwen/Qwen3-Embedding-0.6B", hub="modelscope")


def test_unknown_hub_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="huggingface, modelscope"):
        resolve_model("Qwen/Qwen3-Embedding-0.6B", hub="github")


def test_missing_transformers_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from finesift import load_embedder

    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingDependency, match=r"finesift\[transformers\]"):
        load_embedder(str(tmp_path))
