"""kill -9 of an indexer writing to Milvus (milvus-lite server) or PostgreSQL, at named points of
their commit paths, including in the middle of replacing documents. Afterwards the KB must hold no
partial document and no mix of versions, and a re-run must reach the state of a clean build."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from finesift.kb.knowledge_base import KnowledgeBase, open_or_create
from finesift.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.service]
SRC = Path(__file__).resolve().parents[2] / "src"
KB_OPTIONS = {"commit_chunks": 6, "chunk_size": 32, "chunk_overlap": 0}
SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys
    from pathlib import Path
    import importlib

    module, step, nth, home, docs, options = sys.argv[1:7]
    store = importlib.import_module(module)
    seen = {"n": 0}

    def hook(name):
        if name == step:
            seen["n"] += 1
            if seen["n"] == int(nth):
                os.kill(os.getpid(), signal.SIGKILL)

    store.fault_hook = hook
    from finesift.kb.knowledge_base import open_or_create
    from finesift.settings import Settings

    settings = Settings(home=Path(home), embedding={"model": "fake"}, reranker={"model": "fake"},
                        kb=json.loads(options))
    open_or_create("crash", settings=settings).add([docs])
    """
)
MODULES = {"milvus_uri": "finesift.store.milvus", "postgres_uri": "finesift.store.pgvector"}


def write_corpus(root: Path, *, version: int, n: int = 30) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        sentences = [
            f"Document {i} version {version} sentence {j} about topic{i % 7}." for j in range(3 + i % 5)
        ]
        if version > 1 and i % 3 == 0:
            sentences += [f"Extra v{version} line {j} 数据库{i}。" for j in range(6)]
        (root / f"doc{i:03d}.md").write_text(" ".join(sentences), encoding="utf-8")


def settings_for(home: Path, store: str) -> Settings:
    return Settings(
        home=home, embedding={"model": "fake"}, reranker={"model": "fake"}, kb={**KB_OPTIONS, "store": store}
    )


def state(home: Path, store: str) -> dict[str, list[str]]:
    """source -> chunk texts, after checking every document is complete."""
    with KnowledgeBase.open("crash", settings=settings_for(home, store)) as kb:
        snap = kb.snapshot()
        out = {}
        for doc in snap.documents():
            chunks = snap.chunks(doc.doc_id)
            assert [c.index for c in chunks] == list(range(doc.chunks)), f"partial document {doc.source}"
            out[doc.source] = [c.text for c in chunks]
        assert snap.count_chunks() == sum(len(v) for v in out.values())
        return out


def run_killed(home: Path, docs: Path, module: str, step: str, nth: int, store: str) -> int:
    options = json.dumps({**KB_OPTIONS, "store": store})
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    args = [sys.executable, "-c", SCRIPT, module, step, str(nth), str(home), str(docs), options]
    return subprocess.run(args, env=env, capture_output=True, timeout=300).returncode


#: Each store's fault steps; PostgreSQL writes in one transaction, so it has no separate superseding step.
STEPS = [("chunks_added", 3), ("documents_superseded", 2), ("documents_written", 3)]
KILLS = [
    (service, step, nth)
    for service in sorted(MODULES)
    for step, nth in STEPS
    if not (service == "postgres_uri" and step == "documents_superseded")
]


@pytest.mark.parametrize(("service", "step", "nth"), KILLS)
def test_kill_mid_replacement_leaves_whole_documents(
    request, tmp_path: Path, service: str, step: str, nth: int
) -> None:
    uri = request.getfixturevalue(service)
    docs = tmp_path / "docs"
    write_corpus(docs, version=1)
    home = tmp_path / "home"
    with open_or_create("crash", settings=settings_for(home, uri)) as kb:
        kb.add([docs])
    old = state(home, uri)
    write_corpus(docs, version=2)
    clean = tmp_path / "clean"
    with open_or_create("crash", settings=settings_for(clean, "lancedb")) as kb:
        kb.add([docs])
    expected = state(clean, "lancedb")
    assert run_killed(home, docs, MODULES[service], step, nth, uri) == -signal.SIGKILL
    after = state(home, uri)
    for source, texts in after.items():
        assert texts in (old[source], expected[source]), f"{source} mixes versions"
    assert any(after[s] != old[s] for s in after), "the kill came after some commits"
    with open_or_create("crash", settings=settings_for(home, uri)) as kb:
        report = kb.add([docs])
    assert report.documents_failed == 0
    assert state(home, uri) == expected
