"""jieba's dictionary read from the SQLite copy cuts exactly like jieba with the whole dictionary."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

pytest.importorskip("jieba")

from finesift.lexical import cjk, tokenize

TEXTS = [
    "数据库索引的查询优化",
    "北京大学生前来应聘，他们在中华人民共和国国务院工作",
    "我来到北京清华大学，小明硕士毕业于中国科学院计算所，后在日本京都大学深造",
    "结婚的和尚未结婚的",
    "工信处女干事每月经过下属科室都要亲口交代24口交换机等技术性器件的安装工作",
    "永和服装饰品有限公司",
    "向量检索与重排序模型：嵌入、召回、精排",
    "乒乓球拍卖完了",
    "李小福是创新办主任也是云计算方面的专家",
    "鲁迅先生说过，其实地上本没有路，走的人多了，也便成了路",
    "ビッグデータとは何ですか",
    "한국어 문장도 섞여 있습니다",
    "蔡英文和特朗普通电话",
    "小明在2025年用Qwen3-Embedding做了知识库",
]


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tokenizer = cjk.full()
    path = tmp_path_factory.mktemp("jieba") / "copy.sqlite"
    cjk.write_table(tokenizer.FREQ, tokenizer.total, path)
    return path


def test_copy_cuts_like_the_full_dictionary(table: Path) -> None:
    full, copy = cjk.full(), cjk.from_table(table)
    assert copy is not None and copy is not full
    assert copy.total == full.total and len(copy.FREQ) == len(full.FREQ)
    for text in TEXTS:
        assert list(copy.cut_for_search(text)) == list(full.cut_for_search(text)), text
        assert list(copy.cut(text)) == list(full.cut(text)), text
        assert list(copy.cut(text, HMM=False)) == list(full.cut(text, HMM=False)), text


def test_copy_lookups_match(table: Path) -> None:
    full, copy = cjk.full(), cjk.from_table(table)
    assert copy is not None
    for word in ["数据", "数据库", "数", "不存在的词语", "", "北京大"]:
        assert (word in copy.FREQ) == (word in full.FREQ)
        assert copy.FREQ.get(word) == full.FREQ.get(word)
    assert copy.FREQ.get(3) is None
    with pytest.raises(KeyError):
        copy.FREQ["不存在的词语"]


def test_full_load_writes_the_copy_where_the_cache_is(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FINESIFT_CACHE_DIR", str(tmp_path / "cache"))
    cjk.full.cache_clear()
    cjk.for_queries.cache_clear()
    try:
        path = cjk.table_path()
        assert path is not None and path.parent == tmp_path / "cache"
        cjk.full()
        assert path.exists() and not list(path.parent.glob("*.tmp"))
        cjk.full.cache_clear()  # a fresh process: no full dictionary loaded, the copy is there
        tokenizer = cjk.for_queries()
        assert isinstance(tokenizer.FREQ, cjk.TableFreq)
        assert [tokenize(t, query=True) for t in TEXTS] == [tokenize(t) for t in TEXTS]
    finally:
        cjk.full.cache_clear()
        cjk.for_queries.cache_clear()


@pytest.mark.parametrize("damage", ["missing", "garbage", "empty-meta"])
def test_queries_fall_back_to_the_full_dictionary(tmp_path, monkeypatch, damage: str) -> None:
    monkeypatch.setenv("FINESIFT_CACHE_DIR", str(tmp_path))
    path = cjk.table_path()
    assert path is not None
    if damage == "garbage":
        path.write_bytes(b"not a database")
    elif damage == "empty-meta":
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE meta (total INTEGER, words INTEGER)")
    assert cjk.from_table(path) is None
    cjk.full.cache_clear()
    cjk.for_queries.cache_clear()
    try:
        monkeypatch.setattr(cjk, "write_table", lambda *a: None)  # keep the damaged file in place
        assert cjk.for_queries() is cjk.full()
        assert tokenize(TEXTS[1], query=True) == tokenize(TEXTS[1])
    finally:
        cjk.full.cache_clear()
        cjk.for_queries.cache_clear()


def test_an_unwritable_cache_does_not_stop_tokenising(tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("FINESIFT_CACHE_DIR", str(blocker / "cache"))  # under a file: mkdir fails
    cjk.full.cache_clear()
    cjk.for_queries.cache_clear()
    try:
        assert tokenize("数据库", query=True) == ["数据", "据库", "数据库"]
    finally:
        cjk.full.cache_clear()
        cjk.for_queries.cache_clear()
