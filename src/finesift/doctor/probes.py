"""The fixed probe set: multilingual queries with instructions, documents, a long text, Chinese, code.

The texts are constants so that every run, on every machine and backend, measures the same thing.
The long texts are ~900 tokens: longer than llama.cpp's default 512-token micro-batch, so a backend
that truncates long inputs (or cuts the reranker's suffix) shows up, yet short enough for a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

_LONG_PARAGRAPHS = [
    "Hybrid retrieval combines a lexical index such as BM25 with dense vectors from an embedding model.",
    "Reciprocal rank fusion merges the two candidate lists without calibrating their scores.",
    "A cross-encoder reranker then reads each query and document together and scores their relevance.",
    "混合检索把词法索引与稠密向量结合起来，再用重排序模型对候选文档逐一打分。",
    "def fuse(lexical, dense, k=60):\n    return sorted(set(lexical) | set(dense), key=lambda d: rank(d, k))",
    "Long documents are split into overlapping chunks so that each chunk fits the model's context window.",
    "Each chunk keeps a pointer to its source document, its position and the text that surrounds it.",
    "Evaluation uses nDCG@10 and recall@100 on held-out queries with graded relevance judgements.",
]


def long_text(paragraphs: int = 24) -> str:
    """A deterministic ~900-token text mixing English, Chinese and code."""
    parts = [f"[{i}] {_LONG_PARAGRAPHS[i % len(_LONG_PARAGRAPHS)]}" for i in range(paragraphs)]
    return "\n".join(parts)


@dataclass(frozen=True)
class Query:
    """A probe query and the named instruction it is embedded and reranked with (None: default)."""

    text: str
    instruction: str | None = None


@dataclass(frozen=True)
class ProbeSet:
    """Queries, documents (the long text last) and reranking cases (query, documents)."""

    queries: tuple[Query, ...]
    documents: tuple[str, ...]
    rerank: tuple[tuple[Query, tuple[str, ...]], ...]

    @property
    def long_index(self) -> int:
        """Index of the long text among the documents."""
        return len(self.documents) - 1


DOCUMENTS: tuple[str, ...] = (
    "BM25 ranks documents by term frequency, inverse document frequency and document length.",
    "Dense retrieval embeds queries and documents into one vector space and compares them by cosine.",
    "The capital of France is Paris, a city on the Seine known for its museums.",
    "向量检索使用嵌入模型把文本映射为向量，并通过余弦相似度查找最相近的文档。",
    "北京是中华人民共和国的首都，也是全国的政治和文化中心。",
    "def cosine(a, b):\n    return sum(x * y for x, y in zip(a, b)) / (norm(a) * norm(b))",
    "SELECT title, score FROM documents WHERE score > 0.5 ORDER BY score DESC LIMIT 10;",
    long_text(),
)

QUERIES: tuple[Query, ...] = (
    Query("how does BM25 rank documents?"),
    Query("什么是向量检索？", "chinese_retrieval"),
    Query("python function computing cosine similarity", "code_search"),
    Query("capital of France", "question_answering"),
)

RERANK: tuple[tuple[Query, tuple[str, ...]], ...] = (
    (QUERIES[0], (DOCUMENTS[0], DOCUMENTS[1], DOCUMENTS[2], long_text())),
    (QUERIES[1], (DOCUMENTS[3], DOCUMENTS[4], DOCUMENTS[1])),
    (QUERIES[2], (DOCUMENTS[5], DOCUMENTS[6], DOCUMENTS[0])),
)

PROBES = ProbeSet(QUERIES, DOCUMENTS, RERANK)
