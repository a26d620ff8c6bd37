"""What docs/guides/stores.md promises about `kb migrate` crashes and parallel ingestion, end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import run_cli

from finesift.kb.manifest import kb_dir as manifest_dir
from finesift.testing.http import protocol_server

pytest.importorskip("lancedb")
SRC = Path(__file__).resolve().parents[2] / "src"
BASE = ["--embedding-model", "fake", "--reranker-model", "none"]

#: Migrate KB argv[2] (home argv[1]) to argv[3], killed (SIGKILL) at the switch: after the copy is
#: complete and checked, before kb.json names the new store.
CRASH_AT_SWITCH = """
import os, signal, sys
from pathlib import Path
from finesift.kb import manifest
from finesift.kb.migrate import migrate
from finesift.settings import Settings

manifest.write_manifest = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
home, name, to = sys.argv[1:4]
settings = Settings(home=Path(home), embedding={"model": "fake"}, reranker={"model": "none"})
migrate(name, to=to, settings=settings)
"""


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    for i in range(12):
        (root / f"doc{i:02d}.md").write_text(f"# doc {i}\n\nvector search note number {i} " * 5, "utf-8")
    return root


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path, *args: str):
    return run_cli(monkeypatch, capsys, "--home", str(home), *args)


def search(monkeypatch, capsys, home: Path, kb: str) -> list[tuple[str, int]]:
    args = [
        "search",
        "vector search note",
        "--kb",
        kb,
        "-k",
        "5",
        "--mode",
        "hybrid",
        "--no-rerank",
        "--json",
    ]
    code, out, err = run(monkeypatch, capsys, home, *args)
    assert code == 0, err
    return [(h["doc_id"], h["start"]) for h in json.loads(out)["hits"]]


def test_a_migration_killed_before_the_switch_keeps_the_old_store(
    monkeypatch, capsys, tmp_path: Path, corpus: Path
) -> None:
    pytest.importorskip("milvus_lite")
    home, target = tmp_path / "home", str(tmp_path / "lite" / "kb.db")
    code, _, err = run(monkeypatch, capsys, home, "index", str(corpus), "--kb", "hb", *BASE)
    assert code == 0, err
    kb_dir = manifest_dir(home, "hb")
    manifest_before = (kb_dir / "kb.json").read_text(encoding="utf-8")
    before = search(monkeypatch, capsys, home, "hb")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run(
        [sys.executable, "-c", CRASH_AT_SWITCH, str(home), "hb", target],
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    # The KB is still on its old store, whole, and searches as before.
    assert (kb_dir / "kb.json").read_text(encoding="utf-8") == manifest_before
    assert search(monkeypatch, capsys, home, "hb") == before
    code, out, err = run(monkeypatch, capsys, home, "kb", "info", "hb", "--json")
    assert code == 0 and json.loads(out)["documents"] == 12, err
    # The next migration completes (and clears the half-made copy).
    code, out, err = run(monkeypatch, capsys, home, "kb", "migrate", "hb", "--to", target, "--json")
    assert code == 0 and json.loads(out)["documents"] == 12, err
    assert search(monkeypatch, capsys, home, "hb") == before


@pytest.mark.service
def test_parallel_ingest_exits_5_only_when_every_endpoint_refuses_and_resumes(
    monkeypatch, capsys, tmp_path: Path, corpus: Path
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("FINESIFT_EMBEDDING__MAX_RETRIES", "1")
    monkeypatch.setenv("FINESIFT_EMBEDDING__BATCH_SIZE", "4")
    index = ["index", str(corpus), "--kb", "par", "--workers", "2", "--json", *BASE]
    with protocol_server() as (one, state_one), protocol_server() as (two, state_two):
        for state in (state_one, state_two):  # both refuse everything
            state.faults.fail_status, state.faults.failures = 500, 10**6
        code, _, err = run(monkeypatch, capsys, home, *index, "--embedding-url", f"{one},{two}")
        assert code == 5, err
        (line,) = [ln for ln in err.splitlines() if ln.strip()]
        assert line.startswith("error: ")
        # One endpoint still refusing, the other healthy: the run completes through the healthy one.
        state_two.faults.failures = 0
        code, out, err = run(monkeypatch, capsys, home, *index, "--embedding-url", f"{one},{two}")
        assert code == 0, err
        report = json.loads(out)
        # Re-running continues: what a partial run committed stays, the rest is added now.
        assert (
            report["documents_added"] + report["documents_unchanged"] == 12
            and report["documents_failed"] == 0
        )
        code, out, err = run(monkeypatch, capsys, home, *index, "--embedding-url", two)
        assert code == 0 and json.loads(out)["documents_unchanged"] == 12, err
