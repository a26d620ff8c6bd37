"""BM25 over Chinese, English and code.

Tokenising: NFKC and lower case; CJK runs are cut with jieba's search mode (words plus their
sub-words, so 数据库 also matches 数据); Latin words and code identifiers are kept whole and also
split at camelCase and snake_case boundaries (``getUserName`` → getusername, get, user, name).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Hashable, Sequence

import numpy as np

from finesift.lexical import cjk

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
_SPANS = re.compile(rf"[{_CJK}]+|[^\W_]+(?:_+[^\W_]+)*|_+[^\W_]+", re.UNICODE)
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_IS_CJK = re.compile(rf"[{_CJK}]")
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "to",
        "was",
        "were",
        "will",
        "with",
        "的",
        "了",
        "和",
        "是",
        "在",
        "也",
        "就",
        "都",
        "而",
        "及",
        "与",
        "着",
        "或",
        "一个",
        "我们",
        "你们",
        "他们",
    ]
)


def _word_parts(word: str) -> list[str]:
    parts = [p for chunk in word.split("_") for p in _CAMEL.findall(chunk)]
    whole = word.lower().strip("_")
    pieces = [p.lower() for p in parts]
    return [whole] if pieces in ([], [whole]) else [whole, *pieces]


def tokenize(text: str, *, query: bool = False) -> list[str]:
    """BM25 terms of ``text`` (stopwords dropped).

    ``query=True`` says the text is a short one-off (a search query): Chinese is then cut with
    jieba's dictionary read on demand (:func:`finesift.lexical.cjk.for_queries`), which gives the same terms
    without loading the whole dictionary into the process.
    """
    text = unicodedata.normalize("NFKC", text)
    terms: list[str] = []
    for span in _SPANS.findall(text):
        if _IS_CJK.match(span):
            jieba = cjk.for_queries() if query else cjk.full()
            terms.extend(w for w in jieba.cut_for_search(span) if w.strip())
        else:
            terms.extend(_word_parts(span))
    return [t for t in terms if t not in STOPWORDS]


class BM25Index:
    """An immutable Okapi BM25 index (Lucene idf); ``search`` returns (id, score), best first."""

    def __init__(
        self, ids: Sequence[Hashable], texts: Sequence[str], *, k1: float = 1.2, b: float = 0.75
    ) -> None:
        if len(ids) != len(texts):
            raise ValueError("ids and texts must have the same length")
        self.ids = list(ids)
        self.k1, self.b = k1, b
        docs = [Counter(tokenize(t)) for t in texts]
        self._build(docs)

    @classmethod
    def from_codes(
        cls,
        ids: Sequence[Hashable],
        *,
        vocab: Sequence[str],
        codes: np.ndarray,
        lengths: np.ndarray,
        k1: float = 1.2,
        b: float = 0.75,
    ) -> BM25Index:
        """An index over already tokenised documents, without re-tokenising.

        Document ``i`` holds the terms ``vocab[codes[j]]`` for its ``lengths[i]`` consecutive positions
        ``j`` in ``codes`` (a flattened term list, dictionary-encoded). Equal to building from texts
        whose :func:`tokenize` output is those terms.
        """
        from scipy import sparse

        n = len(ids)
        lengths = np.asarray(lengths, dtype=np.int64)
        codes = np.asarray(codes, dtype=np.int64)
        if lengths.shape != (n,) or int(lengths.sum()) != len(codes):
            raise ValueError("lengths must give one count per id, summing to len(codes)")
        self = cls.__new__(cls)
        self.ids = list(ids)
        self.k1, self.b = k1, b
        self.vocab = {term: i for i, term in enumerate(vocab)}
        rows = np.repeat(np.arange(n, dtype=np.int64), lengths)
        counts = sparse.coo_matrix(
            (np.ones(len(codes), dtype=np.float64), (rows, codes)), shape=(n, len(self.vocab))
        ).tocsr()
        counts.sum_duplicates()
        coo = counts.tocoo()
        self._weigh(coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data, lengths.astype(np.float64))
        return self

    def _build(self, docs: list[Counter[str]]) -> None:
        self.vocab: dict[str, int] = {}
        rows, cols, tfs = [], [], []
        for row, counts in enumerate(docs):
            for term, count in counts.items():
                rows.append(row)
                cols.append(self.vocab.setdefault(term, len(self.vocab)))
                tfs.append(count)
        lengths = np.array([sum(c.values()) for c in docs], dtype=np.float64)
        self._weigh(
            np.array(rows, dtype=np.int64),
            np.array(cols, dtype=np.int64),
            np.array(tfs, dtype=np.float64),
            lengths,
        )

    def _weigh(self, r: np.ndarray, c: np.ndarray, tf: np.ndarray, lengths: np.ndarray) -> None:
        """Okapi BM25 weights of the (row, col, tf) postings into a (docs, vocab) CSC matrix."""
        from scipy import sparse

        avg = float(lengths.mean()) if len(lengths) and lengths.mean() > 0 else 1.0
        df = np.bincount(c, minlength=len(self.vocab)).astype(np.float64)
        n = len(lengths)
        idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
        norm = self.k1 * (1.0 - self.b + self.b * lengths[r] / avg)
        weights = idf[c] * tf * (self.k1 + 1.0) / (tf + norm)
        self.matrix = sparse.csc_matrix((weights, (r, c)), shape=(n, len(self.vocab)))

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for ``query`` (zeros where no term matches)."""
        return self.scores_for_terms(tokenize(query))

    def scores_for_terms(self, terms: Sequence[str]) -> np.ndarray:
        """BM25 score of every document for an already tokenised query."""
        cols = [self.vocab[t] for t in terms if t in self.vocab]
        if not cols or not len(self.ids):
            return np.zeros(len(self.ids), dtype=np.float64)
        return np.asarray(self.matrix[:, cols].sum(axis=1)).ravel()

    def search(self, query: str, k: int) -> list[tuple[Hashable, float]]:
        """The ``k`` best-scoring documents with a positive score, ties broken by insertion order."""
        scores = self.scores(query)
        hits = np.flatnonzero(scores > 0)
        if not len(hits):
            return []
        order = hits[np.lexsort((hits, -scores[hits]))][:k]
        return [(self.ids[i], float(scores[i])) for i in order]


def idf_weight(df: int, n: int) -> float:
    """Lucene's BM25 idf, exposed for stores that keep their own postings."""
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))
