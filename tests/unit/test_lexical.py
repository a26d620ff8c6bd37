"""BM25 terms: jieba's search mode, so a word's sub-words find it (docs/guides/knowledge-base.md)."""

from __future__ import annotations

from finesift.lexical import BM25Index, tokenize


def test_chinese_words_are_cut_in_search_mode() -> None:
    """Precise mode would give only 数据库; search mode adds its sub-words 数据 and 据库."""
    assert {"数据库", "数据"} <= set(tokenize("数据库"))


def test_a_sub_word_finds_the_longer_word() -> None:
    index = BM25Index(["db", "cache"], ["如何优化数据库的查询", "热点放在缓存里"])
    assert [doc for doc, _ in index.search("数据", 2)] == ["db"]
