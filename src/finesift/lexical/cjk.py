"""jieba for BM25, loaded two ways that cut identically.

Bulk text (indexing, in-memory BM25) goes through jieba's own tokenizer, whose dictionary (about 500k
words and prefixes) takes close to a second to load into each process. A query touches only the few
dozen entries its own characters reach, so queries read them from a SQLite copy of that dictionary,
written once per machine under :func:`cache_dir` the first time the full dictionary is loaded. A fresh
``finesift search`` with a Chinese query then starts about a second sooner, with the same terms: the
copy holds the same words, frequencies and total, and jieba's segmenter only looks words up.

Without a usable copy (first run, read-only cache, another jieba version) queries use the full
dictionary, as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from finesift.errors import MissingDependency

_MEMO_LIMIT = 200_000


def cache_dir() -> Path:
    """Where the dictionary copy lives: the ``cache_dir`` setting (``FINESIFT_CACHE_DIR``)."""
    from finesift.settings import Settings, default_cache_dir

    try:
        return Settings().cache_dir
    except ValueError:  # an invalid FINESIFT_* variable elsewhere; the CLI reports it on its own
        return default_cache_dir()


def _jieba() -> Any:
    try:
        import jieba
    except ImportError as exc:
        raise MissingDependency("jieba", "kb", "needed to tokenise Chinese for BM25") from exc
    jieba.setLogLevel(logging.WARNING)
    return jieba


def table_path() -> Path | None:
    """The copy's file for the installed jieba and its default dictionary (None if it has no file)."""
    jieba = _jieba()
    source = Path(jieba.__file__).with_name(jieba.DEFAULT_DICT_NAME)
    try:
        size = source.stat().st_size
    except OSError:
        return None
    return cache_dir() / f"jieba-{jieba.__version__}-{size}.sqlite"


@lru_cache(maxsize=1)
def full() -> Any:
    """jieba's tokenizer with its whole dictionary in memory (and the query copy written if missing)."""
    tokenizer = _jieba().Tokenizer()
    tokenizer.initialize()
    path = table_path()
    if path is not None and not path.exists():
        with contextlib.suppress(OSError, sqlite3.Error):
            write_table(tokenizer.FREQ, tokenizer.total, path)
    return tokenizer


def write_table(freq: Mapping[str, int], total: int, path: Path) -> None:
    """Write the dictionary copy atomically (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with contextlib.closing(sqlite3.connect(tmp)) as db:
            db.execute("CREATE TABLE freq (word TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID")
            db.execute("CREATE TABLE meta (total INTEGER NOT NULL, words INTEGER NOT NULL)")
            db.executemany("INSERT INTO freq VALUES (?, ?)", sorted(freq.items()))
            db.execute("INSERT INTO meta VALUES (?, ?)", (total, len(freq)))
            db.commit()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class TableFreq(Mapping[str, int]):
    """jieba's ``FREQ`` mapping read from the SQLite copy, one word at a time (memoised)."""

    def __init__(self, db: sqlite3.Connection, words: int) -> None:
        self._db, self._words = db, words
        self._memo: dict[str, int | None] = {}
        self._lock = threading.Lock()

    def _lookup(self, word: object) -> int | None:
        if not isinstance(word, str):
            return None
        try:
            return self._memo[word]
        except KeyError:
            pass
        with self._lock:
            row = self._db.execute("SELECT n FROM freq WHERE word = ?", (word,)).fetchone()
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            self._memo[word] = value = None if row is None else int(row[0])
        return value

    def __getitem__(self, word: str) -> int:
        value = self._lookup(word)
        if value is None:
            raise KeyError(word)
        return value

    def __contains__(self, word: object) -> bool:
        return self._lookup(word) is not None

    def get(self, word: str, default: Any = None) -> Any:
        value = self._lookup(word)
        return default if value is None else value

    def __len__(self) -> int:
        return self._words

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            words = [w for (w,) in self._db.execute("SELECT word FROM freq")]
        return iter(words)


def from_table(path: Path) -> Any | None:
    """A jieba tokenizer over the copy at ``path``; None if it is missing or unreadable."""
    try:
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, check_same_thread=False)
    except (OSError, sqlite3.Error):
        return None
    try:
        total, words = db.execute("SELECT total, words FROM meta").fetchone()
        if not (int(total) > 0 and int(words) > 0):
            raise ValueError("empty dictionary copy")
    except (sqlite3.Error, TypeError, ValueError):
        db.close()
        return None
    tokenizer = _jieba().Tokenizer()
    tokenizer.FREQ, tokenizer.total = TableFreq(db, int(words)), int(total)
    tokenizer.initialized = True
    return tokenizer


@lru_cache(maxsize=1)
def for_queries() -> Any:
    """A tokenizer for short texts: the full one if this process has it, else one over the copy."""
    if full.cache_info().currsize:
        return full()
    path = table_path()
    tokenizer = from_table(path) if path is not None and path.exists() else None
    return full() if tokenizer is None else tokenizer
