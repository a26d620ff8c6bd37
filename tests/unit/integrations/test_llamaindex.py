"""The LlamaIndex integration against the real ``llama-index-core``: in process and over HTTP.

References are independent of the integration: the query text is formatted here by hand, the
order is the library's ``Reranker.rerank`` and the hits are ``KnowledgeBase.search``'s.
"""

from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys

import numpy as np
import pytest
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from finesift.embedding.instructions import DEFAULT_TASK
from finesift.errors import InvalidRequest, MissingDependency
from finesift.integrations.llamaindex import FinesiftEmbedding, FinesiftRerank, FinesiftRetriever
from finesift.retrieval.options import SearchOptions
from framework_support import KEY, PASSAGES, QUERY, TEXTS

MODES = ["local", "http"]


def target(mode, local, url):
    return local if mode == "local" else url


@pytest.mark.parametrize("mode", MODES)
def test_query_embedding_carries_the_instruction_and_text_embeddings_do_not(
    mode, tiny_embedder, model_server
):
    emb = FinesiftEmbedding(embedder=target(mode, tiny_embedder, model_server), api_key=KEY)
    assert isinstance(emb, BaseEmbedding)
    expected = tiny_embedder.embed_documents([f"Instruct: {DEFAULT_TASK}\nQuery:{QUERY}"])[0]
    np.testing.assert_allclose(emb.get_query_embedding(QUERY), expected, atol=1e-5)
    raw = tiny_embedder.embed_documents(PASSAGES)
    np.testing.assert_allclose(emb.get_text_embedding(PASSAGES[0]), raw[0], atol=1e-5)
    np.testing.assert_allclose(emb.get_text_embedding_batch(PASSAGES), raw, atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_async_embeddings_equal_sync_ones(mode, tiny_embedder, model_server):
    emb = FinesiftEmbedding(embedder=target(mode, tiny_embedder, model_server), dim=32, api_key=KEY)

    async def both():
        return await emb.aget_query_embedding(QUERY), await emb.aget_text_embedding_batch(PASSAGES)

    query, docs = asyncio.run(both())
    assert len(query) == 32
    np.testing.assert_allclose(query, emb.get_query_embedding(QUERY), atol=1e-6)
    np.testing.assert_allclose(docs, tiny_embedder.embed_documents(PASSAGES, dim=32), atol=1e-5)


def test_model_name_defaults_to_the_model_or_url(tiny_embedder, model_server):
    assert FinesiftEmbedding(embedder=tiny_embedder).model_name == tiny_embedder.model_id
    assert FinesiftEmbedding(embedder=model_server).model_name == model_server


@pytest.mark.parametrize("mode", MODES)
def test_postprocessor_order_is_the_librarys(mode, tiny_reranker, model_server):
    post = FinesiftRerank(reranker=target(mode, tiny_reranker, model_server), top_n=3, api_key=KEY)
    nodes = [NodeWithScore(node=TextNode(id_=f"n{i}", text=t), score=0.0) for i, t in enumerate(PASSAGES)]
    out = post.postprocess_nodes(nodes, query_str=QUERY)
    expected = tiny_reranker.rerank(QUERY, PASSAGES, top_n=3)
    assert [n.node.node_id for n in out] == [f"n{r.index}" for r in expected]
    assert [n.score for n in out] == pytest.approx([r.score for r in expected], abs=1e-5)
    assert all(n.score == 0.0 for n in nodes)  # the inputs are left alone
    again = asyncio.run(post.apostprocess_nodes(nodes, query_bundle=QueryBundle(QUERY)))
    assert [n.node.node_id for n in again] == [n.node.node_id for n in out]
    assert post.postprocess_nodes([], query_str=QUERY) == []
    with pytest.raises(ValueError, match="query"):
        post.postprocess_nodes(nodes)


@pytest.mark.parametrize("mode", MODES)
def test_retriever_returns_the_kbs_hits_with_citations(mode, knowledge_base, kb_server):
    retriever = FinesiftRetriever(target(mode, knowledge_base, kb_server), kb="docs", top_k=3)
    assert isinstance(retriever, BaseRetriever)
    nodes = retriever.retrieve(QUERY)
    hits = knowledge_base.search(QUERY, SearchOptions.of(knowledge_base.settings.search, top_k=3))
    assert len(nodes) == len(hits) == 3
    for scored, hit in zip(nodes, hits, strict=True):
        node = scored.node
        assert node.get_content() == hit.text == TEXTS[hit.source][hit.start : hit.end]
        assert node.node_id == node.metadata["chunk_id"] == f"{hit.doc_id}:{hit.start}-{hit.end}"
        assert (node.start_char_idx, node.end_char_idx) == (hit.start, hit.end)
        assert node.metadata["source"] == hit.source and node.metadata["kb"] == "docs"
        assert scored.score == pytest.approx(hit.score)
    again = asyncio.run(retriever.aretrieve(QUERY))
    assert [n.node.node_id for n in again] == [n.node.node_id for n in nodes]


def test_retriever_filters_by_file_type(knowledge_base):
    retriever = FinesiftRetriever(knowledge_base, file_types=[".txt"])
    assert retriever.retrieve(QUERY) == []
    with pytest.raises(InvalidRequest, match="another knowledge base"):
        FinesiftRetriever(knowledge_base, kb="other")


def test_a_missing_llamaindex_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_index.core.base.embeddings.base", None)
    monkeypatch.delitem(sys.modules, "finesift.integrations.llamaindex")
    with pytest.raises(MissingDependency, match=r"finesift\[llamaindex\]"):
        importlib.import_module("finesift.integrations.llamaindex")


def test_importing_finesift_imports_no_framework():
    code = (
        "import sys, finesift, finesift.integrations; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('langchain_core', 'llama_index', 'httpx') or m.startswith('finesift.integrations.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
