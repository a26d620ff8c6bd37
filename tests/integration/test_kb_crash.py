"""kill -9 during indexing, at named points of the commit path and at random moments.

After each kill the KB must open, hold no partial document (every document has exactly its chunks,
from one version of its file), and a re-run must complete to the same state as a clean build.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from finesift.kb.knowledge_base import KnowledgeBase, open_or_create
from finesift.settings import Settings

pytestmark = [pytest.mark.slow]
pytest.importorskip("lancedb")
SRC = Path(__file__).resolve().parents[2] / "src"
KB_OPTIONS = {"commit_chunks": 6, "chunk_size": 32, "chunk_overlap": 0}
SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys
    from pathlib import Path
    from finesift.store import lancedb as store

    step, nth, home, docs, options = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    seen = {"n": 0}

    def hook(name):
        if name == step:
            seen["n"] += 1
            if seen["n"] == nth:
                os.kill(os.getpid(), signal.SIGKILL)

    store.fault_hook = hook
    from finesift.kb.knowledge_base import open_or_create
    from finesift.settings import Settings

    settings = Settings(home=Path(home), embedding={"model": "fake"}, reranker={"model": "fake"},
                        kb=json.loads(options))
    open_or_create("crash", settings=settings).add([docs])
    """
)


def settings_for(home: Path) -> Settings:
    return Settings(home=home, embedding={"model": "fake"}, reranker={"model": "fake"}, kb=KB_OPTIONS)


def write_corpus(root: Path, *, version: int, n: int = 40) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        sentences = [
            f"Document {i} version {version} sentence {j} about topic{i % 7}." for j in range(3 + i % 5)
        ]
        if version > 1 and i % 3 == 0:
            sentences += [f"Extra v{version} line {j} 数据库{i}。" for j in range(6)]
        (root / f"doc{i:03d}.md").write_text(" ".join(sentences), encoding="utf-8")


def state(home: Path) -> dict[str, list[str]]:
    """source -> chunk texts, after checking every document is complete."""
    with KnowledgeBase.open("crash", settings=settings_for(home)) as kb:
        snap = kb.snapshot()
        out = {}
        for doc in snap.documents():
            chunks = snap.chunks(doc.doc_id)
            assert [c.index for c in chunks] == list(range(doc.chunks)), f"partial document {doc.source}"
            out[doc.source] = [c.text for c in chunks]
        assert snap.count_chunks() == sum(len(v) for v in out.values()), "chunks of an uncommitted document"
        return out


def clean_build(tmp_path: Path, docs: Path) -> dict[str, list[str]]:
    home = tmp_path / "clean"
    open_or_create("crash", settings=settings_for(home)).add([docs])
    return state(home)


def run_killed(home: Path, docs: Path, step: str, nth: int) -> int:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, step, str(nth), str(home), str(docs), json.dumps(KB_OPTIONS)],
        env=env,
        capture_output=True,
        timeout=300,
    )
    return proc.returncode


def check_after_crash(home: Path, docs: Path, expected: dict[str, list[str]], *, old=None) -> None:
    partial = state(home)
    for source, texts in partial.items():
        assert texts == expected[source] or (old is not None and texts == old[source]), source
    report = open_or_create("crash", settings=settings_for(home)).add([docs])
    assert report.documents_failed == 0
    assert state(home) == expected


@pytest.mark.parametrize(
    ("step", "nth"), [("chunks_deleted", 3), ("chunks_added", 2), ("documents_written", 4), ("committed", 1)]
)
def test_kill_at_named_points(tmp_path: Path, step: str, nth: int) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, version=1)
    expected = clean_build(tmp_path, docs)
    home = tmp_path / "home"
    assert run_killed(home, docs, step, nth) == -signal.SIGKILL
    check_after_crash(home, docs, expected)


def test_kill_while_replacing_documents(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, version=1)
    home = tmp_path / "home"
    open_or_create("crash", settings=settings_for(home)).add([docs])
    old = state(home)
    write_corpus(docs, version=2)
    expected = clean_build(tmp_path, docs)
    assert run_killed(home, docs, "chunks_added", 3) == -signal.SIGKILL
    after = state(home)
    assert any(after[s] != old[s] for s in after) and any(after[s] == old[s] != expected[s] for s in after)
    check_after_crash(home, docs, expected, old=old)


def test_kill_at_random_moments_while_readers_watch(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, version=1, n=80)
    expected = clean_build(tmp_path, docs)
    slow = {**KB_OPTIONS, "commit_chunks": 1}  # many commits, so the kill lands mid-run
    rng = random.Random(1234)
    for trial in range(3):
        home = tmp_path / f"home{trial}"
        env = {**os.environ, "PYTHONPATH": str(SRC)}
        proc = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, "never", "0", str(home), str(docs), json.dumps(slow)], env=env
        )
        pointer = home / "kbs" / "crash" / "store" / "COMMIT"
        deadline = time.monotonic() + 120
        while (not pointer.exists() or b'"seq": 0' in pointer.read_bytes()) and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(2 + trial):  # a reader sees only whole documents while the writer runs
            state(home)
        time.sleep(rng.uniform(0.0, 1.0))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL, "the writer finished before the kill"
        check_after_crash(home, docs, expected)
