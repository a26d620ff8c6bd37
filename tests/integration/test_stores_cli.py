"""Server stores end to end: ``--store URI``, ``kb migrate`` (same top-10 after LanceDB → Milvus),
and parallel ingestion through two OpenAI-compatible servers on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_support import run_cli

from finesift.testing.http import protocol_server

pytest.importorskip("lancedb")
WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "数据库",
    "索引",
    "查询",
    "优化",
    "缓存",
    "连接池",
]
QUERIES = ["数据库 索引", "alpha kappa", "缓存 优化 theta", "zeta", "连接池 查询", "beta gamma delta"]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path / "docs"
    root.mkdir()
    for i in range(40):
        paragraphs = [" ".join(rng.choice(WORDS, 30)) for _ in range(3)]
        (root / f"doc{i:02d}.md").write_text(f"# doc {i}\n\n" + "\n\n".join(paragraphs), "utf-8")
    return root


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path, *args: str):
    return run_cli(monkeypatch, capsys, "--home", str(home), *args)


def top10(monkeypatch, capsys, home: Path, kb: str, *extra: str) -> list[list[tuple[str, int, float]]]:
    """Per query, the top-10 (doc_id, start, score) of dense and of hybrid search (no rerank)."""
    out = []
    for query in QUERIES:
        for mode in ("dense", "hybrid"):
            args = ["search", query, "--kb", kb, "-k", "10", "--mode", mode, "--no-rerank", "--json", *extra]
            code, text, err = run(monkeypatch, capsys, home, *args)
            assert code == 0, err
            out.append([(h["doc_id"], h["start"], round(h["score"], 5)) for h in json.loads(text)["hits"]])
    return out


@pytest.mark.service
def test_migrate_lancedb_to_milvus_and_pgvector_keeps_the_top_10(
    monkeypatch, capsys, tmp_path: Path, corpus: Path, milvus_uri: str, postgres_uri: str
) -> None:
    home = tmp_path / "home"
    fake = ["--embedding-model", "fake", "--reranker-model", "none"]
    code, _, err = run(monkeypatch, capsys, home, "index", str(corpus), "--kb", "hb", *fake, "--json")
    assert code == 0, err
    before = top10(monkeypatch, capsys, home, "hb")
    assert all(len(hits) == 10 for hits in before)
    for target in (milvus_uri, postgres_uri, "lancedb"):
        code, out, err = run(monkeypatch, capsys, home, "kb", "migrate", "hb", "--to", target, "--json")
        assert code == 0, err
        report = json.loads(out)
        assert report["documents"] == 40 and report["target"] == target
        assert top10(monkeypatch, capsys, home, "hb") == before, f"results changed after moving to {target}"
        code, out, _ = run(monkeypatch, capsys, home, "kb", "info", "hb", "--json")
        assert json.loads(out)["store"] == target
    code, out, _ = run(monkeypatch, capsys, home, "index", str(corpus), "--kb", "hb", "--json")
    assert json.loads(out)["chunks_embedded"] == 0, "a migrated KB stays incremental"


@pytest.mark.service
def test_store_uri_on_creation_and_drop_removes_the_collections(
    monkeypatch, capsys, tmp_path: Path, corpus: Path, milvus_uri: str
) -> None:
    from finesift.store.milvus_client import connect_client

    home = tmp_path / "home"
    args = ["index", str(corpus), "--kb", "m", "--embedding-model", "fake", "--reranker-model", "none"]
    code, _, err = run(monkeypatch, capsys, home, *args, "--store", milvus_uri)
    assert code == 0, err
    client = connect_client(milvus_uri, None)
    ours = [c for c in client.list_collections() if c.startswith("fs_m_")]
    assert len(ours) == 3
    code, _, err = run(monkeypatch, capsys, home, *args, "--store", "lancedb")
    assert code == 7 and "--store" in err
    code, out, _ = run(monkeypatch, capsys, home, "search", "数据库", "--kb", "m", "--mode", "bm25", "--json")
    assert code == 0 and json.loads(out)["hits"]
    code, _, _ = run(monkeypatch, capsys, home, "kb", "drop", "m", "--yes")
    assert code == 0 and not [c for c in client.list_collections() if c in ours]
    client.close()


def test_unknown_store_uri_is_a_one_line_error(monkeypatch, capsys, tmp_path: Path, corpus: Path) -> None:
    args = ["index", str(corpus), "--kb", "x", "--embedding-model", "fake", "--store", "redis://host"]
    code, _, err = run(monkeypatch, capsys, tmp_path / "home", *args)
    assert code == 2 and "unknown store 'redis://host'" in err and "postgresql://" in err


def test_milvus_lite_file_store(monkeypatch, capsys, tmp_path: Path, corpus: Path) -> None:
    pytest.importorskip("pymilvus")
    home = tmp_path / "home"
    db = tmp_path / "lite" / "kb.db"
    args = ["index", str(corpus), "--kb", "lite", "--embedding-model", "fake", "--reranker-model", "none"]
    code, out, err = run(monkeypatch, capsys, home, *args, "--store", str(db), "--json")
    assert code == 0 and json.loads(out)["documents_added"] == 40, err
    hits = top10(monkeypatch, capsys, home, "lite")
    assert all(len(h) == 10 for h in hits)


@pytest.mark.service
def test_parallel_index_through_two_servers_equals_one_server(
    monkeypatch, capsys, tmp_path: Path, corpus: Path
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("FINESIFT_EMBEDDING__MAX_RETRIES", "1")
    monkeypatch.setenv("FINESIFT_EMBEDDING__BATCH_SIZE", "8")
    base = ["--embedding-model", "fake", "--reranker-model", "none", "--json"]
    with protocol_server() as (one, state_one), protocol_server() as (two, state_two):
        state_two.faults.fail_status, state_two.faults.failures = 500, 3  # retried, then moved to `one`
        urls = f"{one},{two}"
        code, out, err = run(
            monkeypatch, capsys, home, "index", str(corpus), "--kb", "par", "--workers", "4",
            "--embedding-url", urls, *base,
        )  # fmt: skip
        assert code == 0, err
        assert json.loads(out)["documents_added"] == 40
        calls = [
            len([r for r in s.requests if r["path"] == "/v1/embeddings"]) for s in (state_one, state_two)
        ]
        assert min(calls) > 1, f"both endpoints must share the work, got {calls}"
        code, _, err = run(
            monkeypatch, capsys, home, "index", str(corpus), "--kb", "single", "--embedding-url", one, *base
        )
        assert code == 0, err
        parallel = top10(monkeypatch, capsys, home, "par", "--embedding-url", urls)
        single = top10(monkeypatch, capsys, home, "single", "--embedding-url", one)
    assert parallel == single


def test_workers_without_urls_is_refused(monkeypatch, capsys, tmp_path: Path, corpus: Path) -> None:
    code, _, err = run(
        monkeypatch, capsys, tmp_path / "h", "index", str(corpus), "--kb", "w", "--workers", "2"
    )
    assert code == 2 and "--embedding-url" in err
