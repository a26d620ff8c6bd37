"""``--engine ray``: the KB a Ray Data job builds equals plain ``index``'s; a failed job resumes; no extra.

The tests that run Ray share one local runtime (starting it takes seconds) and are marked slow: CI's
pinned set runs them, the quick sets do not.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from finesift.kb.knowledge_base import KnowledgeBase, open_or_create
from finesift.retrieval.pipeline import SearchOptions
from finesift.settings import Settings


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray runtime for the module (starting one takes seconds); jobs join it."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture
def ray_settings(kb_settings: Settings, local_ray: None) -> Settings:
    """Small Ray batches, so that several parse tasks and embedding calls happen per run."""
    return kb_settings.model_copy(update={"ray": kb_settings.ray.model_copy(update={"batch_docs": 2})})


def add_with_ray(kb: KnowledgeBase, paths: list[Path], **kwargs):
    from finesift.kb.ray_ingest import add_with_ray

    return add_with_ray(kb, paths, **kwargs)


def contents(kb: KnowledgeBase) -> dict[str, tuple]:
    """Per source: the record (without its time), the chunks, their vectors."""
    docs = kb.documents()
    out = {}
    for write in kb.snapshot().export([d.doc_id for d in docs]):
        info = write.info
        record = (info.doc_id, info.file_type, info.content_hash, info.pipeline, info.chunks, info.chars)
        out[info.source] = (
            record,
            [(c.chunk_id, c.text, c.start, c.end) for c in write.chunks],
            write.vectors,
        )
    return out


def assert_same_kb(ours: KnowledgeBase, plain: KnowledgeBase) -> None:
    got, want = contents(ours), contents(plain)
    assert got.keys() == want.keys()
    for source, (record, chunks, vectors) in want.items():
        assert got[source][:2] == (record, chunks), source
        np.testing.assert_allclose(got[source][2], vectors, atol=1e-5)
    for query in ("如何优化数据库", "getUserName", "docker"):
        for mode in ("dense", "bm25", "hybrid"):
            options = SearchOptions(top_k=10, mode=mode, rerank=False)
            hits = [(h.doc_id, h.start, h.end, round(h.score, 4)) for h in ours.search(query, options)]
            assert hits == [
                (h.doc_id, h.start, h.end, round(h.score, 4)) for h in plain.search(query, options)
            ]


def build_both(settings: Settings, corpus: Path) -> tuple[KnowledgeBase, KnowledgeBase]:
    plain = open_or_create("plain", settings=settings)
    plain.add([corpus])
    ours = open_or_create("viaray", settings=settings)
    report = add_with_ray(ours, [corpus])
    assert (report.documents_added, report.documents_failed) == (4, 1)
    assert report.failures[0].reason.endswith("unsupported file type .png")
    assert report.chunks_embedded == plain.snapshot().count_chunks() > 4
    return ours, plain


@pytest.mark.slow
def test_the_ray_job_builds_the_kb_plain_index_builds(ray_settings: Settings, corpus: Path) -> None:
    ours, plain = build_both(ray_settings, corpus)
    assert_same_kb(ours, plain)
    (corpus / "db.md").write_text("# 数据库\n\n分库分表可以提升写入吞吐。", encoding="utf-8")
    (corpus / "sub" / "code.py").unlink()
    again = add_with_ray(ours, [corpus], prune=True)
    assert (again.documents_updated, again.documents_unchanged, again.documents_removed) == (1, 2, 1)
    plain.add([corpus], prune=True)
    assert_same_kb(ours, plain)


@pytest.mark.slow
def test_the_tiny_qwen3_model_gives_the_same_kb(
    ray_settings: Settings, corpus: Path, tiny_embedding_model: Path
) -> None:
    embedding = {"model": str(tiny_embedding_model), "device": "cpu", "dtype": "float32"}
    settings = ray_settings.model_copy(update={"embedding": ray_settings.embedding.model_validate(embedding)})
    ours, plain = build_both(settings, corpus)
    assert_same_kb(ours, plain)


@pytest.mark.slow
def test_a_failed_job_keeps_its_commits_and_a_rerun_skips_them(ray_settings: Settings, corpus: Path) -> None:
    for i in range(6):
        (corpus / f"extra{i}.md").write_text(f"# Note {i}\n\n" + f"words about topic {i}. " * 40)
    kb = open_or_create("viaray", settings=ray_settings)

    def crash(done: int, total: int, source: str) -> None:
        if done == 7:
            raise KeyboardInterrupt  # what Ctrl-C does mid-run

    with pytest.raises(KeyboardInterrupt):
        add_with_ray(kb, [corpus], progress=crash)
    kept = len(KnowledgeBase.open("viaray", settings=ray_settings).documents())
    assert 0 < kept < 10, "commits before the failure stay, the group in flight is lost"
    report = add_with_ray(kb, [corpus])
    assert (report.documents_unchanged, report.documents_added) == (kept, 10 - kept)
    plain = open_or_create("plain", settings=ray_settings)
    plain.add([corpus])
    assert_same_kb(kb, plain)


@pytest.mark.slow
@pytest.mark.usefixtures("local_ray")
def test_the_cli_indexes_through_ray_like_it_indexes_locally(monkeypatch, capsys, tmp_path, corpus) -> None:
    from cli_support import run_cli

    common = [
        "--home",
        str(tmp_path / "home"),
        "index",
        str(corpus),
        "--embedding-model",
        "fake",
        "--reranker-model",
        "none",
        "--json",
    ]
    reports = {}
    for kb, engine in (("viaray", "ray"), ("plain", "local")):
        code, out, _ = run_cli(monkeypatch, capsys, *common, "--kb", kb, "--engine", engine)
        assert code == 0
        reports[kb] = json.loads(out)
    assert reports["viaray"] == reports["plain"] and reports["plain"]["documents_added"] == 4
    hits = {}
    for kb in reports:
        args = ["--home", str(tmp_path / "home"), "search", "如何优化数据库", "--kb", kb, "--json"]
        hits[kb] = json.loads(run_cli(monkeypatch, capsys, *args)[1])["hits"]
    assert hits["viaray"] == hits["plain"] != []


def test_without_ray_the_error_names_the_extra(monkeypatch, capsys, tmp_path, corpus) -> None:
    from cli_support import run_cli

    monkeypatch.setitem(sys.modules, "ray", None)
    home = tmp_path / "home"
    args = ["--home", str(home), "index", str(corpus), "--kb", "hb", "--engine", "ray"]
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 3 and "pip install 'finesift[ray]'" in err
    assert not KnowledgeBase.exists("hb", settings=Settings(home=home)), "nothing is created"
