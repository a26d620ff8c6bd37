"""KnowledgeBase: incremental indexing, updates, deletes, prune, fingerprint, lock, names, citations."""

from __future__ import annotations

from pathlib import Path

import pytest

from finesift import load_embedder
from finesift.errors import Conflict, InvalidRequest, NotFound
from finesift.kb.knowledge_base import KnowledgeBase, open_or_create
from finesift.kb.manifest import writer_lock
from finesift.retrieval.pipeline import SearchOptions
from finesift.settings import Settings
from finesift.store.base import Filters
from finesift.types import Document


def test_index_is_incremental(kb_settings: Settings, corpus: Path) -> None:
    embedder = load_embedder("fake")
    kb = KnowledgeBase.create("hb", settings=kb_settings, embedder=embedder)
    first = kb.add([corpus])
    assert (first.documents_added, first.documents_failed) == (4, 1)
    assert first.failures[0].reason.endswith("unsupported file type .png")
    assert first.chunks_embedded == kb.snapshot().count_chunks() > 0
    calls = embedder.backend.calls
    again = KnowledgeBase.open("hb", settings=kb_settings, embedder=embedder).add([corpus])
    assert (again.documents_unchanged, again.chunks_embedded, again.documents_added) == (4, 0, 0)
    assert embedder.backend.calls == calls, "unchanged files must cost zero embedding calls"


def test_changed_file_is_reindexed_and_old_text_is_gone(kb_settings: Settings, corpus: Path) -> None:
    kb = open_or_create("hb", settings=kb_settings)
    kb.add([corpus])
    (corpus / "db.md").write_text("# 数据库\n\n分库分表可以提升写入吞吐。", encoding="utf-8")
    report = kb.add([corpus])
    assert (report.documents_updated, report.documents_unchanged) == (1, 3)
    texts = [h.text for h in kb.search("数据库", SearchOptions(top_k=20, rerank=False))]
    assert any("分库分表" in t for t in texts) and not any("全表扫描" in t for t in texts)


def test_delete_by_id_or_path_and_prune(kb_settings: Settings, corpus: Path) -> None:
    kb = open_or_create("hb", settings=kb_settings)
    kb.add([corpus])
    docs = {Path(d.source).name: d for d in kb.documents()}
    assert kb.delete([docs["gbk.txt"].doc_id, str(corpus / "db.md")]) == 2
    assert {Path(d.source).name for d in kb.documents()} == {"code.py", "page.html"}
    with pytest.raises(NotFound, match="no document"):
        kb.delete(["nope"])
    (corpus / "sub" / "code.py").unlink()
    report = kb.add([corpus / "sub"], prune=True)
    assert report.documents_removed == 1
    assert [Path(d.source).name for d in kb.documents()] == ["page.html"]
    hits = kb.search("getUserName", SearchOptions(mode="bm25", rerank=False))
    assert hits == []


def test_hits_cite_exact_offsets(kb_settings: Settings, corpus: Path) -> None:
    kb = open_or_create("hb", settings=kb_settings)
    kb.add([corpus])
    hits = kb.search("如何优化数据库", SearchOptions(top_k=3))
    assert hits and hits[0].source.endswith("db.md")
    from finesift.ingest.loaders import load_bytes

    for hit in hits:
        text = load_bytes(Path(hit.source).read_bytes(), hit.source).text
        assert text[hit.start : hit.end] == hit.text
        assert 0.0 <= hit.score <= 1.0


def test_filters_and_modes(kb_settings: Settings, corpus: Path) -> None:
    kb = open_or_create("hb", settings=kb_settings)
    kb.add([corpus])
    sub = str(corpus / "sub") + "/"
    hits = kb.search("deploy docker user", SearchOptions(top_k=10, filters=Filters(source_prefix=sub)))
    assert hits and all(h.source.startswith(sub) for h in hits)
    only_py = kb.search("user cache", SearchOptions(filters=Filters(file_types=("py",)), rerank=False))
    assert only_py and all(h.source.endswith(".py") for h in only_py)
    for mode in ("dense", "bm25", "hybrid"):
        found = kb.search("getUserName", SearchOptions(mode=mode, rerank=False))
        # The fake embedder can tie two documents exactly; the tie order follows path-derived ids.
        best = [h.source for h in found if h.score == found[0].score]
        assert any(source.endswith("code.py") for source in best), (mode, found)
    every = kb.search("getUserName", SearchOptions(top_k=10))
    assert every[0].score > every[-1].score, every
    cut = (every[0].score + every[-1].score) / 2
    high = kb.search("getUserName", SearchOptions(top_k=10, threshold=cut))
    # The threshold keeps exactly the hits at or above it: some, not all.
    assert 0 < len(high) < len(every)
    assert [(h.doc_id, h.start, h.score) for h in high] == [
        (h.doc_id, h.start, h.score) for h in every if h.score >= cut
    ]
    with pytest.raises(InvalidRequest, match="empty"):
        kb.search("   ")


def test_fingerprint_mismatch_is_refused(kb_settings: Settings, corpus: Path) -> None:
    open_or_create("hb", settings=kb_settings).add([corpus])
    with pytest.raises(Conflict, match="dimension"):
        KnowledgeBase.open("hb", settings=kb_settings, embedder=load_embedder("fake:128"))
    other = load_embedder("fake", instruction="Given a question, retrieve passages that answer the question")
    with pytest.raises(Conflict, match="instruction"):
        KnowledgeBase.open("hb", settings=kb_settings, embedder=other)
    with pytest.raises(Conflict, match="--dim"):
        open_or_create("hb", settings=kb_settings, choices={"dim": 32})


def test_mrl_dim_is_recorded_and_used(kb_settings: Settings, corpus: Path) -> None:
    kb = open_or_create("small", settings=kb_settings, choices={"dim": 32})
    kb.add([corpus])
    assert kb.manifest.dim == 32 and kb.store.dimension == 32
    assert kb.search("数据库", SearchOptions(mode="dense", rerank=False))


def test_second_writer_fails_fast(kb_settings: Settings, corpus: Path) -> None:
    kb = open_or_create("hb", settings=kb_settings)
    with writer_lock(kb.path, "hb"), pytest.raises(Conflict, match="being written by pid"):
        KnowledgeBase.open("hb", settings=kb_settings).add([corpus])
    assert kb.add([corpus]).documents_added == 4


def test_names_and_lifecycle(kb_settings: Settings) -> None:
    for bad in ("../x", "a/b", "", ".hidden", "x" * 65, "a\x00"):
        with pytest.raises(InvalidRequest, match="invalid knowledge base name"):
            KnowledgeBase.open(bad, settings=kb_settings)
    with pytest.raises(NotFound, match="no knowledge base named 'missing'"):
        KnowledgeBase.open("missing", settings=kb_settings)
    open_or_create("one", settings=kb_settings)
    open_or_create("two", settings=kb_settings)
    with pytest.raises(Conflict, match="already exists"):
        KnowledgeBase.create("one", settings=kb_settings)
    assert KnowledgeBase.names(settings=kb_settings) == ["one", "two"]
    KnowledgeBase.drop("one", settings=kb_settings)
    assert KnowledgeBase.names(settings=kb_settings) == ["two"]


def test_add_documents_in_memory(kb_settings: Settings) -> None:
    kb = open_or_create("mem", settings=kb_settings)
    upload = Document("upload://notes.md", "Alpha notes.\r\n\r\nBeta\x00 notes.", "")
    assert kb.add_documents([upload]).documents_added == 1
    [hit] = kb.search("beta", SearchOptions(top_k=1, rerank=False))
    assert hit.source == "upload://notes.md" and hit.text == "Alpha notes.\n\nBeta notes."
    assert kb.add_documents([upload]).documents_unchanged == 1
    with pytest.raises(InvalidRequest):
        kb.add_documents([Document("", "x", "md")])


def test_missing_path_is_refused_before_work(kb_settings: Settings, tmp_path: Path) -> None:
    kb = open_or_create("hb", settings=kb_settings)
    with pytest.raises(InvalidRequest, match="no such file or folder"):
        kb.add([tmp_path / "nope"])
    assert kb.documents() == []


def test_a_failed_create_leaves_nothing_and_drop_removes_everything(
    kb_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The KB folder appears whole or not at all (built in a staging folder, then renamed)."""
    from finesift.kb import manifest as mf

    kbs = mf.kbs_dir(kb_settings.home)

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(mf, "write_manifest", full_disk)
        with pytest.raises(Conflict, match=r"cannot create knowledge base 'hb': .*No space left"):
            KnowledgeBase.create("hb", settings=kb_settings, embedder=load_embedder("fake"))
    assert list(kbs.iterdir()) == []
    KnowledgeBase.create("hb", settings=kb_settings, embedder=load_embedder("fake")).close()
    assert [p.name for p in kbs.iterdir()] == ["hb"]
    KnowledgeBase.drop("hb", settings=kb_settings)
    assert list(kbs.iterdir()) == [] and not KnowledgeBase.exists("hb", settings=kb_settings)
