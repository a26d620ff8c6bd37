"""Twins that must stay one: each concept below once had two copies that drifted (issue 22, item 17)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from finesift.embedding.registry import choose_backend as embedding_backend
from finesift.errors import NotFound
from finesift.eval.datasets import load_beir
from finesift.rerank.factory import build_reranker
from finesift.rerank.registry import choose_backend as reranker_backend
from finesift.settings import EmbeddingSettings, RerankSettings
from finesift.train import load_pairs
from finesift.types import DocumentInfo

# model, url -> (embedding backend, reranker backend) under backend="auto"
CHOICES = [
    ("fake", None, ("fake", "fake")),
    ("fake:128", None, ("fake", "fake")),
    ("fake:label", "http://127.0.0.1:1", ("fake", "fake")),
    ("/models/x-Q8_0.gguf", None, ("llamacpp", "llamacpp")),
    ("ollama:qwen3:0.6b", None, ("llamacpp", "llamacpp")),
    ("Qwen/Qwen3-Embedding-0.6B-GGUF:q8_0", None, ("llamacpp", "llamacpp")),
    ("served-name", "http://127.0.0.1:1", ("openai", "remote")),
    ("Qwen/Qwen3-Embedding-0.6B", None, ("transformers", "transformers")),
]


@pytest.mark.parametrize(("model", "url", "expected"), CHOICES)
def test_embedding_and_reranker_choose_backends_by_the_same_rules(model, url, expected) -> None:
    chosen = (
        embedding_backend(EmbeddingSettings(model=model, url=url)),
        reranker_backend(RerankSettings(model=model, url=url)),
    )
    assert chosen == expected


def test_a_fake_reranker_accepts_a_labelled_fake_model_like_the_embedder() -> None:
    reranker = build_reranker(RerankSettings(model="fake:mine"))
    assert reranker.model_id == "fake:mine"
    assert reranker.score("python lists", ["python lists are mutable", "cake"])[0] > 0.5


def _beir(root: Path, *, corpus: bool = True, queries: bool = True, split: str | None = "test") -> Path:
    root.mkdir()
    if corpus:
        (root / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "text": "a passage"}) + "\n")
    if queries:
        (root / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "a query"}) + "\n")
    if split:
        (root / "qrels").mkdir()
        (root / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    return root


@pytest.mark.parametrize(
    ("layout", "words"),
    [
        ({"corpus": False}, "corpus.jsonl' is missing"),
        ({"queries": False}, "queries.jsonl' is missing"),
        ({"split": "dev"}, "available splits: dev"),
    ],
)
def test_eval_and_train_check_a_beir_folder_alike(tmp_path: Path, layout: dict, words: str) -> None:
    root = _beir(tmp_path / "data", **layout)
    with pytest.raises(NotFound) as from_eval:
        load_beir(root, "test")
    with pytest.raises(NotFound) as from_train:
        load_pairs(root, "test")
    assert words in str(from_eval.value) and str(from_train.value) == str(from_eval.value)


def test_the_http_document_schema_is_the_store_record() -> None:
    pytest.importorskip("fastapi")
    from finesift.server.kb_schemas import KBInfo

    schema = KBInfo.model_json_schema()
    item = schema["properties"]["document_list"]["items"]["$ref"].rsplit("/", 1)[-1]
    fields = set(schema["$defs"][item]["properties"])
    assert fields == {f.name for f in dataclasses.fields(DocumentInfo)}


def test_the_test_doubles_share_one_loopback_server() -> None:
    """One threaded HTTP server (finesift.testing.loopback) and one live uvicorn helper (server_support)."""
    root = Path(__file__).resolve().parents[2]
    starts = {
        "serve_forever": "src/finesift/testing/loopback.py",
        "uvicorn.Server(": "tests/integration/server_support.py",
    }
    for needle, home in starts.items():
        found = sorted(
            p.relative_to(root).as_posix()
            for folder in ("src/finesift/testing", "tests")
            for p in (root / folder).rglob("*.py")
            if needle in p.read_text(encoding="utf-8") and p.name != "test_twins.py"
        )
        assert found == [home], f"{needle} appears in {found}; use {home}"


def test_the_framework_rerankers_share_their_fields_and_setup() -> None:
    pytest.importorskip("langchain_core")
    pytest.importorskip("llama_index.core")
    from finesift.integrations import langchain, llamaindex
    from finesift.integrations.adapters import RerankFields

    for cls in (langchain.FinesiftRerank, llamaindex.FinesiftRerank):
        assert issubclass(cls, RerankFields) and "reranker" not in cls.__annotations__
    lc = langchain.FinesiftRerank(reranker=build_reranker(RerankSettings(model="fake")), top_n=1)
    li = llamaindex.FinesiftRerank(reranker=build_reranker(RerankSettings(model="fake")), top_n=1)
    assert lc._source.rerank("python", ["cake", "python"], top_n=1) == li._source.rerank(
        "python", ["cake", "python"], top_n=1
    )
