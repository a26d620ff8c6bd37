"""Serving one role only (`--reranker-model none`, `--embedding-model none`), served model names, and the
`<name>:query` alias for OpenAI-style clients that cannot send `input_type`."""

from __future__ import annotations

import numpy as np
import pytest
from server_support import post_json, ready_client

from finesift import load_embedder
from finesift.errors import InvalidRequest
from finesift.server.app import create_app
from finesift.settings import Settings


def settings(
    tmp_path,
    embedding: str = "fake",
    reranker: str = "fake",
    *,
    emb: dict | None = None,
    rer: dict | None = None,
) -> Settings:
    return Settings(
        home=tmp_path / "home", embedding={"model": embedding, **(emb or {})},
        reranker={"model": reranker, **(rer or {})},
    )  # fmt: skip


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.text
    message: str = response.json()["error"]["message"]
    assert "\n" not in message
    return message


# ---- one role only ---------------------------------------------------------------------------


def test_embeddings_only_server(tmp_path):
    pytest.importorskip("lancedb")
    with ready_client(create_app(settings(tmp_path, reranker="none"))) as c:
        models = c.get("/v1/models").json()["data"]
        assert [(m["id"], m["task"]) for m in models] == [
            ("fake:64", "embedding"),
            ("fake:64:query", "embedding-query"),
        ]
        assert post_json(c, "/v1/embeddings", {"input": ["hello"]}).status_code == 200
        for path, body in (
            ("/v1/rerank", {"query": "q", "documents": ["a"]}),
            ("/v2/rerank", {"model": "fake", "query": "q", "documents": ["a"]}),
        ):
            message = error_of(post_json(c, path, body), 404)
            assert "serves no reranker" in message and "--reranker-model MODEL" in message
        # A KB asking for reranking is created without one, and its search works, scored by RRF.
        created = post_json(c, "/v1/kbs", {"name": "notes", "rerank": True})
        assert created.status_code == 201, created.text
        assert created.json()["reranker_model"] is None
        files = {"files": ("a.md", b"# Cache\nKeep hot rows in memory.", "text/markdown")}
        assert c.post("/v1/kbs/notes/documents", files=files).status_code == 200
        found = post_json(c, "/v1/kbs/notes/search", {"query": "hot rows", "rerank": True})
        assert found.status_code == 200, found.text
        assert found.json()["hits"] and found.json()["score"] == "rrf"


def test_a_kb_that_records_a_reranker_searches_without_it_on_an_embeddings_only_server(tmp_path):
    pytest.importorskip("lancedb")
    from finesift.kb.knowledge_base import KnowledgeBase

    both = settings(tmp_path)
    with KnowledgeBase.create("kb", settings=both) as kb:
        source = tmp_path / "a.md"
        source.write_text("# Cache\nKeep hot rows in memory.", encoding="utf-8")
        kb.add([source])
        assert kb.manifest.reranker_model == "fake"
    with ready_client(create_app(settings(tmp_path, reranker="none"))) as c:
        found = post_json(c, "/v1/kbs/kb/search", {"query": "hot rows"})
        assert found.status_code == 200, found.text
        assert found.json()["score"] == "rrf"  # not reranked: the server serves no reranker
    with ready_client(create_app(both)) as c:
        assert post_json(c, "/v1/kbs/kb/search", {"query": "hot rows"}).json()["score"] == "rerank"


def test_reranker_only_server(tmp_path):
    with ready_client(create_app(settings(tmp_path, embedding="none"))) as c:
        assert [(m["id"], m["task"]) for m in c.get("/v1/models").json()["data"]] == [("fake", "rerank")]
        ranked = post_json(c, "/v1/rerank", {"query": "q", "documents": ["a", "b"]})
        assert ranked.status_code == 200 and len(ranked.json()["results"]) == 2
        message = error_of(post_json(c, "/v1/embeddings", {"input": "hello"}), 404)
        assert "serves no embedding model" in message and "--embedding-model MODEL" in message
        message = error_of(post_json(c, "/v1/kbs", {"name": "notes"}), 404)
        assert "serves no embedding model" in message
        assert c.get("/ready").json()["status"] == "ready"


def test_serving_nothing_is_refused(tmp_path):
    with pytest.raises(InvalidRequest, match="nothing to serve"):
        create_app(settings(tmp_path, embedding="none", reranker="none"))


# ---- served names ----------------------------------------------------------------------------


def test_served_model_name_is_what_clients_send_and_see(tmp_path):
    named = settings(tmp_path, emb={"served_name": "qwen3-embed"}, rer={"served_name": "qwen3-rerank"})
    with ready_client(create_app(named)) as c:
        ids = [m["id"] for m in c.get("/v1/models").json()["data"]]
        assert ids == ["qwen3-embed", "qwen3-embed:query", "qwen3-rerank"]
        embedded = post_json(c, "/v1/embeddings", {"input": "x", "model": "qwen3-embed"})
        assert embedded.status_code == 200 and embedded.json()["model"] == "qwen3-embed"
        ranked = post_json(c, "/v1/rerank", {"query": "q", "documents": ["a"], "model": "qwen3-rerank"})
        assert ranked.status_code == 200 and ranked.json()["model"] == "qwen3-rerank"
        # The backend's own id keeps working (older clients), an unknown name lists what is served.
        assert post_json(c, "/v1/embeddings", {"input": "x", "model": "fake:64"}).status_code == 200
        message = error_of(post_json(c, "/v1/embeddings", {"input": "x", "model": "gpt-4"}), 404)
        assert "'gpt-4'" in message and "'qwen3-embed'" in message and "'qwen3-rerank'" in message
        error_of(post_json(c, "/v1/rerank", {"query": "q", "documents": ["a"], "model": "qwen3-embed"}), 404)


def test_a_model_loaded_from_a_directory_is_served_by_the_directory_name(tmp_path, tiny_embedding_model):
    local = settings(tmp_path, embedding=str(tiny_embedding_model), reranker="none")
    with ready_client(create_app(local)) as c:
        ids = [m["id"] for m in c.get("/v1/models").json()["data"]]
        assert ids == [tiny_embedding_model.name, tiny_embedding_model.name + ":query"]
        assert not any(i.startswith("/") for i in ids)
        for name in (tiny_embedding_model.name, str(tiny_embedding_model)):  # the full path: compatibility
            r = post_json(c, "/v1/embeddings", {"input": "x", "model": name})
            assert r.status_code == 200, r.text
            assert r.json()["model"] == name


def test_served_name_defaults():
    from finesift.server.naming import served_name
    from finesift.settings import EmbeddingSettings

    hub = EmbeddingSettings(model="Qwen/Qwen3-Embedding-0.6B")
    assert served_name(hub, "/home/u/.cache/hf/models--Qwen/snapshots/abc") == "Qwen/Qwen3-Embedding-0.6B"
    assert served_name(EmbeddingSettings(model="/srv/models/my-embed/"), "/srv/models/my-embed") == "my-embed"
    assert served_name(EmbeddingSettings(model="fake"), "fake:64") == "fake:64"
    assert served_name(hub.model_copy(update={"served_name": "e"}), "/x") == "e"


# ---- the query alias -------------------------------------------------------------------------


def test_the_query_alias_embeds_queries_with_the_instruction(tmp_path):
    expected = load_embedder("fake")
    texts = ["where is the cache", "热点数据"]
    with ready_client(create_app(settings(tmp_path))) as c:
        as_query = post_json(c, "/v1/embeddings", {"input": texts, "model": "fake:64:query"})
        assert as_query.status_code == 200, as_query.text
        assert as_query.json()["model"] == "fake:64:query"
        plain = post_json(c, "/v1/embeddings", {"input": texts, "model": "fake:64"}).json()
        explicit = post_json(c, "/v1/embeddings", {"input": texts, "input_type": "query"}).json()
    got = np.array([d["embedding"] for d in as_query.json()["data"]], dtype=np.float32)
    np.testing.assert_allclose(got, expected.embed_queries(texts), atol=1e-6)
    np.testing.assert_allclose(got, [d["embedding"] for d in explicit["data"]], atol=1e-6)
    documents = np.array([d["embedding"] for d in plain["data"]], dtype=np.float32)
    np.testing.assert_allclose(documents, expected.embed_documents(texts), atol=1e-6)
    assert not np.allclose(got, documents, atol=1e-3)  # the instruction made a difference


def test_the_query_alias_with_input_type_document_is_422_naming_both(tmp_path):
    with ready_client(create_app(settings(tmp_path))) as c:
        body = {"input": ["a"], "model": "fake:64:query", "input_type": "document"}
        message = error_of(post_json(c, "/v1/embeddings", body), 422)
        assert "fake:64:query" in message and '"input_type"' in message and "document" in message
        body["input_type"] = "query"  # no contradiction
        assert post_json(c, "/v1/embeddings", body).status_code == 200


def test_a_served_name_ending_in_the_query_suffix_is_refused_at_startup(tmp_path):
    with pytest.raises(InvalidRequest, match=r"'embed:query' ends in ':query'.*serve it as 'embed'"):
        create_app(settings(tmp_path, emb={"served_name": "embed:query"}))


def test_every_listed_model_name_answers(tmp_path):
    """A model's own id may end in the suffix (a remote model's tag): each name /v1/models lists works."""
    from finesift.server.naming import ServedNames, resolve_model

    names = ServedNames(embedding="m:query")
    for name in names.listed():
        query = resolve_model(name, served="m:query", model_id="m:query", role="embedding", names=names)
        assert query == name.endswith(":query:query")


def test_the_query_alias_takes_the_configured_instruction(tmp_path):
    task = "Given a bug report, retrieve the code that fixes it"
    expected = load_embedder("fake").embed_queries(["crash on start"], instruction=task)
    configured = settings(tmp_path, emb={"instruction": task})
    with ready_client(create_app(configured)) as c:
        r = post_json(c, "/v1/embeddings", {"input": ["crash on start"], "model": "fake:64:query"})
    np.testing.assert_allclose([r.json()["data"][0]["embedding"]], expected, atol=1e-6)


def test_ask_on_an_embeddings_only_server_answers_from_fused_scores(tmp_path):
    """Without a reranker the scores are RRF (~0.03), not probabilities: the 0.2 threshold must not refuse."""
    pytest.importorskip("lancedb")
    from finesift.kb.knowledge_base import KnowledgeBase
    from finesift.testing.chat import chat_server

    with KnowledgeBase.create("kb", settings=settings(tmp_path)) as kb:  # records the fake reranker
        source = tmp_path / "db.md"
        source.write_text("# 数据库\n如何优化数据库：建立索引，避免全表扫描。", encoding="utf-8")
        kb.add([source])
    with chat_server() as (llm, chat):
        served = settings(tmp_path, reranker="none").model_copy(
            update={"llm": Settings(llm={"url": llm, "model": "tiny"}).llm}
        )
        with ready_client(create_app(served)) as c:
            r = post_json(c, "/v1/kbs/kb/ask", {"query": "如何优化数据库"})
    assert r.status_code == 200, r.text
    assert r.json()["refused"] is False and r.json()["citations"]
    assert chat.requests  # the answer came from the chat model
