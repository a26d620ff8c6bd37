"""What docs/guides/knowledge-base.md and docs/design/kb-correctness.md promise, one test each.

Skipped folders, the file-size cap, scanned and encrypted PDFs, camelCase/snake_case BM25 terms, no
writes on an unchanged re-index, searches while a writer holds the lock.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from finesift import load_embedder
from finesift.errors import Conflict
from finesift.kb.knowledge_base import KnowledgeBase, open_or_create
from finesift.kb.manifest import writer_lock
from finesift.lexical import tokenize
from finesift.retrieval.pipeline import SearchOptions
from finesift.settings import Settings


def sources(kb: KnowledgeBase) -> set[str]:
    return {Path(d.source).name for d in kb.documents()}


def test_node_modules_pycache_and_hidden_entries_are_skipped(kb_settings: Settings, tmp_path: Path) -> None:
    root = tmp_path / "tree"
    for folder in ("node_modules/pkg", "__pycache__", ".git", "src"):
        (root / folder).mkdir(parents=True)
    (root / "node_modules" / "pkg" / "readme.md").write_text("vendored package docs", encoding="utf-8")
    (root / "__pycache__" / "cached.py").write_text("x = 1", encoding="utf-8")
    (root / ".git" / "notes.md").write_text("git internals", encoding="utf-8")
    (root / "src" / "app.py").write_text("def main():\n    return 0\n", encoding="utf-8")
    (root / "guide.md").write_text("# Guide\n\nRead me first.", encoding="utf-8")
    kb = open_or_create("tree", settings=kb_settings)
    report = kb.add([root])
    assert sources(kb) == {"app.py", "guide.md"}
    assert (report.documents_added, report.documents_failed) == (2, 0)


def test_files_over_the_size_cap_are_skipped_with_a_reason(kb_settings: Settings, tmp_path: Path) -> None:
    assert Settings().kb.max_file_mb == 64  # the documented default
    root = tmp_path / "sized"
    root.mkdir()
    (root / "small.md").write_text("small file", encoding="utf-8")
    (root / "big.md").write_text("big " * 100_000, encoding="utf-8")  # 400 KB
    settings = kb_settings.model_copy(update={"kb": kb_settings.kb.model_copy(update={"max_file_mb": 0.25})})
    kb = open_or_create("sized", settings=settings)
    report = kb.add([root])
    assert sources(kb) == {"small.md"}
    (failure,) = report.failures
    assert failure.source.endswith("big.md") and "over the 262144-byte limit" in failure.reason


def _pdf(text: str | None) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    if text is None:  # what a scan looks like to a text extractor: drawing, no text layer
        pdf.rect(20, 20, 100, 60, style="F")
    else:
        pdf.set_font("helvetica", size=12)
        pdf.cell(text=text)
    return bytes(pdf.output())


def _encrypted(data: bytes) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_scanned_and_encrypted_pdfs_fail_with_a_reason_and_the_run_goes_on(
    kb_settings: Settings, tmp_path: Path
) -> None:
    root = tmp_path / "pdfs"
    root.mkdir()
    (root / "text.pdf").write_bytes(_pdf("Vector search finds similar passages."))
    (root / "scan.pdf").write_bytes(_pdf(None))
    (root / "locked.pdf").write_bytes(_encrypted(_pdf("a secret report")))
    kb = open_or_create("pdfs", settings=kb_settings)
    report = kb.add([root])
    assert sources(kb) == {"text.pdf"}
    reasons = {Path(f.source).name: f.reason for f in report.failures}
    assert "no text layer (scanned?)" in reasons["scan.pdf"]
    assert "encrypted" in reasons["locked.pdf"]


def test_bm25_splits_camel_case_and_snake_case_and_keeps_the_whole_identifier(
    kb_settings: Settings, tmp_path: Path
) -> None:
    terms = tokenize("getUserName snake_case_name HTTPServerError")
    for term in ("getusername", "get", "user", "name", "snake_case_name", "snake", "case"):
        assert term in terms, terms
    assert {"http", "server", "error"} <= set(terms)
    root = tmp_path / "code"
    root.mkdir()
    (root / "users.py").write_text("def getUserName(user):\n    return user.full_name\n", encoding="utf-8")
    (root / "weather.md").write_text("Rain is expected tomorrow afternoon.", encoding="utf-8")
    kb = open_or_create("code", settings=kb_settings)
    kb.add([root])
    for query in ("user name", "full", "getUserName"):
        hits = kb.search(query, SearchOptions(mode="bm25", rerank=False))
        assert hits and Path(hits[0].source).name == "users.py", (query, hits)


def test_an_unchanged_re_index_writes_nothing(kb_settings: Settings, corpus: Path) -> None:
    kb = open_or_create("hb", settings=kb_settings)
    kb.add([corpus])
    version = kb.snapshot().version
    files = {p: p.stat().st_mtime_ns for p in kb.path.rglob("*") if p.is_file() and p.name != ".lock"}
    again = kb.add([corpus])
    assert (again.documents_unchanged, again.documents_added, again.chunks_embedded) == (4, 0, 0)
    assert kb.snapshot().version == version  # no commit
    after = {p: p.stat().st_mtime_ns for p in kb.path.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == files  # no file written, none added


def test_searches_are_not_blocked_by_the_writer_lock(kb_settings: Settings, corpus: Path) -> None:
    kb = open_or_create("hb", settings=kb_settings)
    kb.add([corpus])
    reader = KnowledgeBase.open("hb", settings=kb_settings)
    with writer_lock(kb.path, "hb"):  # a writer holds the KB
        with pytest.raises(Conflict):
            reader.add([corpus])  # the lock is really held
        hits = reader.search("数据库 索引", SearchOptions(top_k=3))
        assert hits and Path(hits[0].source).name == "db.md"
        assert len(reader.documents()) == 4 and reader.info()["documents"] == 4


def test_a_moved_model_directory_keeps_the_kb_working(
    copy_model, tiny_embedding_model: Path, tmp_path: Path, corpus: Path
) -> None:
    import shutil

    first = copy_model(tiny_embedding_model)

    def settings(model: Path) -> Settings:
        embedding = {"model": str(model), "dtype": "float32", "device": "cpu"}
        return Settings(home=tmp_path / "home", embedding=embedding, reranker={"model": "fake"})

    with open_or_create("moved", settings=settings(first)) as kb:
        kb.add([corpus])
        before = [(h.doc_id, h.start) for h in kb.search("数据库 索引", SearchOptions(rerank=False))]
    moved = tmp_path / "elsewhere" / "renamed-model"
    moved.parent.mkdir()
    shutil.move(first, moved)
    # kb-correctness.md: the model name (here its path) is not compared, so the moved directory is
    # accepted as the KB's embedder (passed as `embedder=`; the KB itself records the old path).
    embedder = load_embedder(str(moved), dtype="float32", device="cpu")
    with KnowledgeBase.open("moved", settings=settings(moved), embedder=embedder) as kb:
        assert [(h.doc_id, h.start) for h in kb.search("数据库 索引", SearchOptions(rerank=False))] == before
        assert kb.add([corpus]).documents_unchanged == 4  # the pipeline digest did not change either
