"""What a new KB records about its models (issue 22, items B and F)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from finesift.errors import Conflict, NotFound
from finesift.kb import manifest as mf
from finesift.kb.knowledge_base import KnowledgeBase, open_or_create
from finesift.kb.spec import KBSpec, check_choices
from finesift.retrieval.pipeline import SearchOptions
from finesift.settings import Settings

pytest.importorskip("lancedb")


def test_a_relative_model_path_is_recorded_absolute(monkeypatch, tmp_path: Path) -> None:
    for folder in ("emb-ft", "fake", "none"):  # folders named like the fake model and "no reranker"
        (tmp_path / folder).mkdir()
    monkeypatch.chdir(tmp_path)
    spec = KBSpec.from_settings(
        Settings(home=tmp_path / "home"), embedding_model="./emb-ft", reranker_model="./emb-ft"
    )
    assert spec.embedding_model == spec.reranker_model == str((tmp_path / "emb-ft").resolve())
    plain = KBSpec.from_settings(Settings(), embedding_model="fake", reranker_model="none")
    assert (plain.embedding_model, plain.reranker_model) == ("fake", None)
    manifest = mf.Manifest(
        "k", "lancedb", spec.embedding_model, None, 8, "", 512, None, 64, 8, fingerprint={}, created_at=""
    )
    check_choices(manifest, {"embedding_model": "./emb-ft"})  # the recorded model, named as at creation
    with pytest.raises(Conflict):
        check_choices(manifest, {"embedding_model": "./other"})


def test_a_kb_indexed_with_a_relative_model_path_is_searched_from_elsewhere(
    monkeypatch, copy_model, tiny_embedding_model: Path, tmp_path: Path
) -> None:
    model = copy_model(tiny_embedding_model)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "db.md").write_text("如何优化数据库查询？使用索引。", encoding="utf-8")
    settings = Settings(
        home=tmp_path / "home", embedding={"dtype": "float32", "device": "cpu"}, reranker={"model": "none"}
    )
    monkeypatch.chdir(model.parent)
    with open_or_create("rel", settings=settings, choices={"embedding_model": f"./{model.name}"}) as kb:
        kb.add([tmp_path / "docs"])
    monkeypatch.chdir(tmp_path / "docs")
    with KnowledgeBase.open("rel", settings=settings) as kb:
        assert kb.search("数据库", SearchOptions(rerank=False))


def _offline(tmp_path: Path) -> Settings:
    hub = {"offline": True, "cache_dir": str(tmp_path / "empty-cache")}
    return Settings(home=tmp_path / "home", embedding={"model": "fake"}, hub=hub)


def test_an_unavailable_default_reranker_is_not_recorded_offline(
    tmp_path: Path, corpus: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _offline(tmp_path)
    with caplog.at_level(logging.WARNING), open_or_create("off", settings=settings) as kb:
        kb.add([corpus])
        assert kb.manifest.reranker_model is None
    assert "not available offline" in caplog.text and settings.reranker.model in caplog.text
    with KnowledgeBase.open("off", settings=settings) as kb:
        assert kb.search("数据库", SearchOptions(rerank=True))


def test_an_unavailable_chosen_reranker_fails_before_indexing_offline(tmp_path: Path) -> None:
    settings = _offline(tmp_path)
    with pytest.raises(NotFound, match="--reranker-model none"):
        open_or_create("off", settings=settings, choices={"reranker_model": "Qwen/Qwen3-Reranker-0.6B"})
    assert not KnowledgeBase.exists("off", settings=settings)
