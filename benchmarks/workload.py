"""A realistic mixed workload from the shared BEIR sets: Chinese paragraphs, code, instructed queries.

Embedding: documents (cmrc2018 paragraphs, cosqa code) and queries with the Qwen3 instruction,
interleaved in a seeded random order. Reranking: per query, its 40 BM25 candidates from the same
corpus (real candidates, the usual first stage), alternating Chinese and code queries.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

ZH_TASK = "Given a Chinese search query, retrieve relevant Chinese passages that answer the query"
CODE_TASK = "Given a natural language query, retrieve code snippets that answer the query"


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _doc_text(doc: dict[str, Any]) -> str:
    return f"{doc.get('title', '')} {doc['text']}".strip()


def load_sets(data: Path) -> dict[str, tuple[list[str], list[str]]]:
    """{name: (document texts, query texts)} for cmrc2018 and cosqa."""
    sets = {}
    for name in ("cmrc2018", "cosqa"):
        docs = [_doc_text(d) for d in _jsonl(data / name / "corpus.jsonl")]
        queries = [q["text"] for q in _jsonl(data / name / "queries.jsonl")]
        sets[name] = (docs, queries)
    return sets


def embedding_texts(data: Path, n: int, *, seed: int = 0) -> list[str]:
    """``n`` texts: 40 % Chinese paragraphs, 30 % code, 30 % instructed queries, shuffled."""
    rng = random.Random(seed)
    sets = load_sets(data)
    n_zh, n_code = round(n * 0.4), round(n * 0.3)
    n_query = n - n_zh - n_code
    texts = rng.sample(sets["cmrc2018"][0], n_zh) + rng.sample(sets["cosqa"][0], n_code)
    for i in range(n_query):
        name, task = ("cmrc2018", ZH_TASK) if i % 2 == 0 else ("cosqa", CODE_TASK)
        texts.append(f"Instruct: {task}\nQuery:{rng.choice(sets[name][1])}")
    rng.shuffle(texts)
    return texts


def rerank_jobs(data: Path, queries: int, candidates: int, *, seed: int = 0) -> list[dict[str, Any]]:
    """``queries`` jobs {query, instruction, documents}: each query's top BM25 candidates."""
    from finesift.lexical import BM25Index

    rng = random.Random(seed)
    sets = load_sets(data)
    jobs = []
    for i in range(queries):
        name, task = ("cmrc2018", ZH_TASK) if i % 2 == 0 else ("cosqa", CODE_TASK)
        docs, qs = sets[name]
        index = BM25Index(list(range(len(docs))), docs)
        query = rng.choice(qs)
        hits = index.search(query, candidates)
        jobs.append({"query": query, "instruction": task, "documents": [docs[int(h)] for h, _ in hits]})
    return jobs
