"""Chunking: exact offsets, heading and sentence boundaries, size and overlap."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from finesift.ingest.chunking import chunk_document, split_segments
from finesift.types import Document


def count(texts: list[str]) -> list[int]:
    """One token per word or CJK character: a stand-in tokenizer."""
    return [max(1, sum(1 if "\u4e00" <= ch <= "\u9fff" else 0 for ch in t) + len(t.split())) for t in texts]


def chunks_of(text: str, *, size: int = 32, overlap: int = 0, file_type: str = "md"):
    return chunk_document(Document("s", text, file_type), "d", count=count, size=size, overlap=overlap)


def test_offsets_are_exact_and_ordered() -> None:
    text = "# 标题\n\n第一句。第二句！第三句？\n\nEnglish sentence one. Sentence two."
    chunks = chunks_of(text, size=16)
    for c in chunks:
        assert c.text == text[c.start : c.end]
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert all(a.start < b.start for a, b in itertools.pairwise(chunks))


def test_chinese_sentence_punctuation_splits() -> None:
    text = "数据库需要索引。查询要快！为什么？因为用户在等。"
    pieces = [text[s.start : s.end] for s in split_segments(text)]
    assert pieces == ["数据库需要索引。", "查询要快！", "为什么？", "因为用户在等。"]


def test_headings_start_new_chunks() -> None:
    text = "# A\n\nalpha text here.\n\n# B\n\nbeta text here."
    chunks = chunks_of(text, size=200)
    assert [c.text.split("\n")[0] for c in chunks] == ["# A", "# B"]


def test_size_limit_and_overlap() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(40))
    chunks = chunks_of(text, size=20, overlap=6)
    assert len(chunks) > 5
    assert all(count([c.text])[0] <= 20 for c in chunks)
    assert any(b.start < a.end for a, b in itertools.pairwise(chunks)), "overlap expected"


def test_long_sentence_is_split() -> None:
    text = "长" * 300
    chunks = chunks_of(text, size=50)
    assert len(chunks) >= 6 and "".join(c.text for c in chunks) == text


def test_code_breaks_at_definitions() -> None:
    text = "import os\n\ndef a():\n    return 1\n\nclass B:\n    pass\n"
    chunks = chunks_of(text, size=200, file_type="py")
    assert [c.text.split("\n")[0] for c in chunks] == ["import os", "def a():", "class B:"]


def test_pages_are_set_from_page_starts() -> None:
    text = "# One\n\nPage one text.\n\n# Two\n\nPage two text."
    doc = Document("s.pdf", text, "pdf", page_starts=(0, text.index("# Two")))
    chunks = chunk_document(doc, "d", count=count, size=16, overlap=0)
    assert [c.page for c in chunks] == [1, 2]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from([*"ab 。.!\n#中文", "\n\n", "# ", "word "]), min_size=1, max_size=150).map(
        "".join
    ),
    st.integers(16, 40),
    st.integers(0, 15),
)
def test_chunks_cover_all_text_exactly(text: str, size: int, overlap: int) -> None:
    chunks = chunks_of(text, size=size, overlap=overlap)
    covered = set()
    for c in chunks:
        assert c.text == text[c.start : c.end] and c.text.strip()
        covered.update(range(c.start, c.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())
