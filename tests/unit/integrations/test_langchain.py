"""The LangChain integration against the real ``langchain-core``: in process and over HTTP.

References are independent of the integration: the query text is formatted here by hand (the
model card's ``Instruct: {task}\\nQuery:{query}``), the order is the library's ``Reranker.rerank``
and the hits are ``KnowledgeBase.search``'s.
"""

from __future__ import annotations

import asyncio
import importlib
import sys

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from finesift.embedding.instructions import DEFAULT_TASK, INSTRUCTIONS
from finesift.errors import BackendError, InvalidRequest, MissingDependency, NotFound
from finesift.integrations.langchain import FinesiftEmbeddings, FinesiftRerank, FinesiftRetriever
from finesift.retrieval.options import SearchOptions
from framework_support import KEY, PASSAGES, QUERY, TEXTS

MODES = ["local", "http"]


def target(mode, local, url):
    return local if mode == "local" else url


def by_hand(query: str, task: str) -> str:
    return f"Instruct: {task}\nQuery:{query}"


# ---- embeddings ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_embed_query_carries_the_instruction_and_documents_do_not(mode, tiny_embedder, model_server):
    emb = FinesiftEmbeddings(target(mode, tiny_embedder, model_server), api_key=KEY)
    query = emb.embed_query(QUERY)
    with_instruction = tiny_embedder.embed_documents([by_hand(QUERY, DEFAULT_TASK)])[0]
    np.testing.assert_allclose(query, with_instruction, atol=1e-5)
    assert not np.allclose(query, tiny_embedder.embed_documents([QUERY])[0], atol=1e-3)
    docs = emb.embed_documents(PASSAGES)
    np.testing.assert_allclose(docs, tiny_embedder.embed_documents(PASSAGES), atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_async_embeddings_equal_sync_ones(mode, tiny_embedder, model_server):
    emb = FinesiftEmbeddings(target(mode, tiny_embedder, model_server), api_key=KEY)

    async def both():
        return await emb.aembed_query(QUERY), await emb.aembed_documents(PASSAGES)

    query, docs = asyncio.run(both())
    np.testing.assert_allclose(query, emb.embed_query(QUERY), atol=1e-6)
    np.testing.assert_allclose(docs, emb.embed_documents(PASSAGES), atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_instruction_and_dimension_reach_the_model(mode, tiny_embedder, model_server):
    emb = FinesiftEmbeddings(
        target(mode, tiny_embedder, model_server), instruction="code_search", dim=32, api_key=KEY
    )
    query = np.array(emb.embed_query("sort a list"))
    expected = tiny_embedder.embed_documents([by_hand("sort a list", INSTRUCTIONS["code_search"])], dim=32)[0]
    assert query.shape == (32,) and np.linalg.norm(query) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(query, expected, atol=1e-5)


def test_empty_document_list_embeds_to_nothing(tiny_embedder, model_server):
    assert FinesiftEmbeddings(tiny_embedder).embed_documents([]) == []
    assert FinesiftEmbeddings(model_server, api_key=KEY).embed_documents([]) == []


def test_http_errors_are_the_trees(model_server):
    with pytest.raises(BackendError, match="api_key"):
        FinesiftEmbeddings(model_server).embed_query(QUERY)  # the server wants a key
    with pytest.raises(InvalidRequest, match="dim"):
        FinesiftEmbeddings(model_server, dim=10_000, api_key=KEY).embed_query(QUERY)
    with pytest.raises(InvalidRequest, match=r"http://127\.0\.0\.1:8000"):
        FinesiftEmbeddings("127.0.0.1:8000")
    with pytest.raises(BackendError, match="cannot reach"):
        FinesiftEmbeddings("http://127.0.0.1:9", timeout_s=2).embed_query(QUERY)  # discard port: refused


# ---- reranking compressor ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_compressor_order_is_the_librarys(mode, tiny_reranker, model_server):
    compressor = FinesiftRerank(reranker=target(mode, tiny_reranker, model_server), top_n=3, api_key=KEY)
    docs = [Document(page_content=t, metadata={"n": i}, id=f"d{i}") for i, t in enumerate(PASSAGES)]
    out = compressor.compress_documents(docs, QUERY)
    expected = tiny_reranker.rerank(QUERY, PASSAGES, top_n=3)
    assert [d.metadata["n"] for d in out] == [r.index for r in expected]
    assert [d.id for d in out] == [f"d{r.index}" for r in expected]
    for doc, r in zip(out, expected, strict=True):
        assert doc.metadata["relevance_score"] == pytest.approx(r.score, abs=1e-5)
    assert all("relevance_score" not in d.metadata for d in docs)  # the inputs are left alone
    again = asyncio.run(compressor.acompress_documents(docs, QUERY))
    assert [d.metadata["n"] for d in again] == [d.metadata["n"] for d in out]


@pytest.mark.parametrize("mode", MODES)
def test_compressor_keeps_all_with_top_n_none_and_honours_the_instruction(mode, tiny_reranker, model_server):
    compressor = FinesiftRerank(
        reranker=target(mode, tiny_reranker, model_server), top_n=None, instruction="code_search", api_key=KEY
    )
    out = compressor.compress_documents([Document(page_content=t) for t in PASSAGES], QUERY)
    scores = tiny_reranker.score(QUERY, PASSAGES, instruction=INSTRUCTIONS["code_search"])
    assert [d.page_content for d in out] == [PASSAGES[i] for i in sorted(range(5), key=lambda i: -scores[i])]
    assert compressor.compress_documents([], QUERY) == []


# ---- knowledge-base retriever --------------------------------------------------------------------


def test_retriever_is_a_langchain_retriever(knowledge_base):
    assert isinstance(FinesiftRetriever(knowledge_base=knowledge_base), BaseRetriever)


@pytest.mark.parametrize("mode", MODES)
def test_retriever_returns_the_kbs_hits_with_citations(mode, knowledge_base, kb_server):
    retriever = FinesiftRetriever(knowledge_base=target(mode, knowledge_base, kb_server), kb="docs", top_k=3)
    docs = retriever.invoke(QUERY)
    hits = knowledge_base.search(QUERY, SearchOptions.of(knowledge_base.settings.search, top_k=3))
    assert len(docs) == len(hits) == 3
    for doc, hit in zip(docs, hits, strict=True):
        assert doc.page_content == hit.text == TEXTS[hit.source][hit.start : hit.end]
        assert doc.id == doc.metadata["chunk_id"] == f"{hit.doc_id}:{hit.start}-{hit.end}"
        assert doc.metadata["source"] == hit.source and doc.metadata["kb"] == "docs"
        assert doc.metadata["score"] == pytest.approx(hit.score)
        assert (doc.metadata["doc_id"], doc.metadata["start"], doc.metadata["end"]) == (
            hit.doc_id,
            hit.start,
            hit.end,
        )
    assert "upload://fruit.md" not in {d.metadata["source"] for d in docs}
    assert [d.id for d in asyncio.run(retriever.ainvoke(QUERY))] == [d.id for d in docs]


@pytest.mark.parametrize("mode", MODES)
def test_retriever_options_and_filters(mode, knowledge_base, kb_server):
    retriever = FinesiftRetriever(
        knowledge_base=target(mode, knowledge_base, kb_server),
        kb="docs",
        search_options={"mode": "bm25", "rerank": False},
        source_prefix="upload://fruit",
    )
    docs = retriever.invoke("bananas")
    assert [d.metadata["source"] for d in docs] == ["upload://fruit.md"]


def test_retriever_refuses_bad_options_and_unknown_kbs(knowledge_base, kb_server):
    with pytest.raises(InvalidRequest, match="unknown search option 'topk'"):
        FinesiftRetriever(knowledge_base=knowledge_base, search_options={"topk": 3})
    with pytest.raises(InvalidRequest, match="top_k"):
        FinesiftRetriever(knowledge_base=knowledge_base, top_k=0)
    with pytest.raises(InvalidRequest, match="name the knowledge base"):
        FinesiftRetriever(knowledge_base=kb_server)
    with pytest.raises(NotFound):
        FinesiftRetriever(knowledge_base=kb_server, kb="nope").invoke(QUERY)


def test_a_missing_langchain_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "langchain_core.embeddings", None)
    monkeypatch.delitem(sys.modules, "finesift.integrations.langchain")
    with pytest.raises(MissingDependency, match=r"finesift\[langchain\]"):
        importlib.import_module("finesift.integrations.langchain")
