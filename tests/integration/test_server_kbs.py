"""Knowledge-base routes over ASGI with the fake models: every route, each 4xx, confinement, limits, auth."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from server_support import post_json, ready_client

from finesift.errors import Overloaded
from finesift.server.app import create_app
from finesift.settings import Settings

pytest.importorskip("lancedb")

KEY = "kb-route-key"
HIT_KEYS = {"doc_id", "source", "text", "score", "start", "end", "page"}
DB_TEXT = "# 数据库\n如何优化数据库：建立索引，避免全表扫描。"
CODE_TEXT = "def getUserName(user):\n    return user.name\n"


def kb_settings(home, **server):
    return Settings(home=home, embedding={"model": "fake"}, reranker={"model": "fake"}, server=server)


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """An index root with documents, a symlink escaping it, a FIFO, and a secret outside it."""
    base = tmp_path_factory.mktemp("roots")
    root, outside = base / "root", base / "outside"
    (root / "docs" / "code").mkdir(parents=True)
    outside.mkdir()
    (root / "docs" / "db.md").write_text(DB_TEXT, encoding="utf-8")
    (root / "docs" / "code" / "user.py").write_text(CODE_TEXT, encoding="utf-8")
    (outside / "secret.md").write_text("the secret password is swordfish", encoding="utf-8")
    (root / "docs" / "escape.md").symlink_to(outside / "secret.md")
    (root / "outdir").symlink_to(outside, target_is_directory=True)
    os.mkfifo(root / "pipe")
    return root, outside


@pytest.fixture(scope="module")
def client(tmp_path_factory, roots):
    home = tmp_path_factory.mktemp("home")
    settings = kb_settings(
        home, index_roots=(roots[0],), max_body_bytes=16384, max_upload_bytes=64 * 1024, max_upload_files=3
    )
    with ready_client(create_app(settings)) as c:
        assert post_json(c, "/v1/kbs", {"name": "hb"}).status_code == 201
        yield c


def upload(client, kb, *files, **kwargs):
    return client.post(f"/v1/kbs/{kb}/documents", files=[("files", f) for f in files], **kwargs)


def error(response, status):
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert set(body) == {"message", "type", "code", "param"} and "\n" not in body["message"]
    return body


# ---- create, list, info, drop -------------------------------------------------------------------


def test_create_list_info_drop(client):
    created = post_json(client, "/v1/kbs", {"name": "tmp-kb", "dim": 32, "rerank": False, "chunk_size": 128})
    assert created.status_code == 201
    info = created.json()
    assert (info["name"], info["dim"], info["reranker_model"], info["chunk_size"]) == (
        "tmp-kb",
        32,
        None,
        128,
    )
    assert "path" not in info and info["documents"] == 0 and info["document_list"] == []
    assert {"hb", "tmp-kb"} <= {kb["name"] for kb in client.get("/v1/kbs").json()["data"]}
    assert client.get("/v1/kbs/tmp-kb").json()["embedding_model"] == "fake:64"
    error(post_json(client, "/v1/kbs", {"name": "tmp-kb"}), 409)
    assert client.delete("/v1/kbs/tmp-kb").json() == {"name": "tmp-kb", "dropped": True}
    assert "tmp-kb" not in {kb["name"] for kb in client.get("/v1/kbs").json()["data"]}
    error(client.get("/v1/kbs/tmp-kb"), 404)


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "../evil"},
        {"name": "a/b"},
        {"name": ".hidden"},
        {"name": "x" * 65},
        {"name": 5},
        {},
        {"name": "ok", "dim": 0},
        {"name": "ok", "dim": 4096},
        {"name": "ok", "chunk_size": 64, "chunk_overlap": 64},
    ],
)
def test_create_refuses_bad_requests(client, body):
    error(post_json(client, "/v1/kbs", body), 422)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/kbs/nope"),
        ("DELETE", "/v1/kbs/nope"),
        ("GET", "/v1/kbs/nope/documents"),
        ("POST", "/v1/kbs/nope/search"),
        ("POST", "/v1/kbs/nope/index"),
        ("DELETE", "/v1/kbs/nope/documents/0123456789abcdef"),
    ],
)
def test_unknown_kb_is_404(client, method, path):
    body = {"query": "x"} if path.endswith("search") else {"paths": ["docs"]}
    response = client.request(method, path, json=body if method == "POST" else None)
    assert "nope" in error(response, 404)["message"]


def test_unknown_kb_upload_is_404(client):
    error(upload(client, "nope", ("a.md", b"hello")), 404)


def test_kb_name_traversal_in_the_url_is_refused(client):
    for path in ("/v1/kbs/..%2F..%2Fetc", "/v1/kbs/%2e%2e", "/v1/kbs/.."):
        assert client.get(path).status_code in (404, 422)


# ---- upload, search, delete ---------------------------------------------------------------------


def test_upload_then_search_returns_cli_shaped_hits(client):
    response = upload(client, "hb", ("db.md", DB_TEXT.encode()), ("logo.png", b"\x89PNG\r\n"))
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["documents_added"], report["documents_failed"]) == (1, 1)
    assert report["failures"][0]["source"] == "upload://logo.png"
    assert report["documents"][0]["source"] == "upload://db.md"
    found = post_json(client, "/v1/kbs/hb/search", {"query": "如何优化数据库", "top_k": 3}).json()
    assert found["hits"] and set(found["hits"][0]) == HIT_KEYS
    hit = found["hits"][0]
    assert hit["source"] == "upload://db.md" and hit["text"] == DB_TEXT[hit["start"] : hit["end"]]
    assert "数据库" in found["query_terms"]
    again = upload(client, "hb", ("db.md", DB_TEXT.encode())).json()
    assert again["documents_unchanged"] == 1 and again["chunks_embedded"] == 0


def test_search_options_and_filters(client):
    upload(client, "hb", ("user.py", CODE_TEXT.encode()), ("db.md", DB_TEXT.encode()))
    bm25 = post_json(client, "/v1/kbs/hb/search", {"query": "getUserName", "mode": "bm25", "rerank": False})
    assert bm25.json()["hits"][0]["source"] == "upload://user.py"
    only_md = post_json(client, "/v1/kbs/hb/search", {"query": "getUserName", "file_types": ["md"]})
    # Both files are indexed: the filter must keep the Markdown hits and drop the Python ones.
    assert {h["source"] for h in only_md.json()["hits"]} == {"upload://db.md"}
    none = post_json(client, "/v1/kbs/hb/search", {"query": "getUserName", "threshold": 2.0})
    assert none.json()["hits"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"query": ""},
        {"query": "   "},
        {"query": 5},
        {},
        {"query": "x", "top_k": 0},
        {"query": "x", "top_k": 1001},
        {"query": "x", "top_k": "5"},
        {"query": "x", "mode": "fuzzy"},
        {"query": "x", "dense_weight": -1},
        {"query": "x", "dense_weight": 0, "bm25_weight": 0},
        {"query": "x\u0000y"},
        {"query": "x" * 9000},
    ],
)
def test_search_refuses_bad_requests(client, body):
    error(post_json(client, "/v1/kbs/hb/search", body), 422)


def test_malformed_json_is_400(client):
    response = client.post("/v1/kbs/hb/search", content=b"{", headers={"content-type": "application/json"})
    error(response, 400)


def test_delete_document(client):
    doc = upload(client, "hb", ("gone.md", b"ephemeral zebra text")).json()["documents"][0]["doc_id"]
    assert client.delete(f"/v1/kbs/hb/documents/{doc}").json() == {"deleted": 1}
    hits = post_json(client, "/v1/kbs/hb/search", {"query": "zebra", "mode": "bm25"}).json()["hits"]
    assert doc not in {h["doc_id"] for h in hits}
    error(client.delete(f"/v1/kbs/hb/documents/{doc}"), 404)
    error(client.delete("/v1/kbs/hb/documents/not-an-id"), 422)
    listed = client.get("/v1/kbs/hb/documents").json()["data"]
    assert doc not in {d["doc_id"] for d in listed}


# ---- upload limits --------------------------------------------------------------------------------


def test_upload_limits(client):
    # Uploads have their own limit, above the JSON body limit (16 KiB here).
    assert upload(client, "hb", ("big.md", b"word " * 4000)).status_code == 200
    assert error(upload(client, "hb", ("huge.md", b"x" * (65 * 1024))), 413)["code"] == "body_too_large"
    files = [(f"{i}.md", b"text") for i in range(4)]
    assert "3" in error(upload(client, "hb", *files), 422)["message"]
    error(post_json(client, "/v1/kbs/hb/search", {"query": "x" * 20000}), 413)


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        ([("a.md", b"x"), ("a.md", b"y")], "same name"),
        ([("..", b"x")], "file name"),
        ([("only.png", b"\x89PNG")], "nothing to index"),
        ([("empty.md", b"   ")], "nothing to index"),
    ],
)
def test_upload_refuses_bad_files(client, files, fragment):
    assert fragment in error(upload(client, "hb", *files), 422)["message"]


def test_upload_needs_multipart_files(client):
    error(post_json(client, "/v1/kbs/hb/documents", {"files": ["a"]}), 422)
    error(client.post("/v1/kbs/hb/documents", data={"other": "x"}, files=[("other", ("a.md", b"x"))]), 422)


def test_upload_file_names_lose_their_folders(client):
    report = upload(client, "hb", ("../../etc/passwd.md", b"not really a password file")).json()
    assert report["documents"][0]["source"] == "upload://passwd.md"


# ---- server-side paths ----------------------------------------------------------------------------


def test_index_paths_inside_the_root(client, roots):
    root, _ = roots
    response = post_json(client, "/v1/kbs/hb/index", {"paths": ["docs"]})
    assert response.status_code == 200, response.text
    report = response.json()
    sources = {d["source"] for d in report["documents"]}
    assert sources == {str(root / "docs" / "db.md"), str(root / "docs" / "code" / "user.py")}
    # The symlink leading outside is skipped and reported, never read.
    assert [f["reason"] for f in report["failures"]] == ["escape.md: links outside the index roots; skipped"]
    hits = post_json(client, "/v1/kbs/hb/search", {"query": "swordfish password", "mode": "bm25"}).json()
    assert all("swordfish" not in h["text"] for h in hits["hits"])
    absolute = post_json(client, "/v1/kbs/hb/index", {"paths": [str(root / "docs" / "db.md")]})
    assert absolute.json()["documents_unchanged"] == 1


def test_index_prune_removes_deleted_files(client, roots):
    root, _ = roots
    extra = root / "docs" / "temp.md"
    extra.write_text("temporary walrus notes", encoding="utf-8")
    assert post_json(client, "/v1/kbs/hb/index", {"paths": ["docs"]}).json()["documents_added"] == 1
    extra.unlink()
    pruned = post_json(client, "/v1/kbs/hb/index", {"paths": ["docs"], "prune": True}).json()
    assert pruned["documents_removed"] == 1


@pytest.mark.parametrize(
    "path",
    [
        "../outside/secret.md",
        "docs/../../outside/secret.md",
        "..",
        "docs/..",
        "/etc/passwd",
        "/",
        "/dev/null",
        "/proc/self/environ",
        "outdir/secret.md",
        "outdir",
        "docs/escape.md",
        "pipe",
    ],
)
def test_path_traversal_payloads_are_403(client, roots, path):
    body = error(post_json(client, "/v1/kbs/hb/index", {"paths": [path]}), 403)
    assert body["type"] == "permission_error"
    assert str(roots[1]) not in body["message"]


def test_outside_root_via_absolute_path_is_403(client, roots):
    root, outside = roots
    for path in (str(outside / "secret.md"), str(root) + "/../outside/secret.md", str(root) + "2"):
        error(post_json(client, "/v1/kbs/hb/index", {"paths": [path]}), 403)


@pytest.mark.parametrize("paths", [[], [""], ["docs\u0000.md"], ["missing.md"], "docs", [5]])
def test_index_refuses_malformed_paths(client, paths):
    error(post_json(client, "/v1/kbs/hb/index", {"paths": paths}), 422)


def test_index_without_roots_is_403(tmp_path):
    with ready_client(create_app(kb_settings(tmp_path))) as c:
        post_json(c, "/v1/kbs", {"name": "kb"})
        assert "--index-root" in error(post_json(c, "/v1/kbs/kb/index", {"paths": ["/tmp"]}), 403)["message"]


# ---- writers, fingerprint -------------------------------------------------------------------------


def test_concurrent_uploads_are_serialized_not_refused(client):
    def send(i):
        return upload(client, "hb", (f"c{i}.md", f"concurrent document number {i}".encode())).status_code

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(send, range(6))) == [200] * 6
    sources = {d["source"] for d in client.get("/v1/kbs/hb/documents").json()["data"]}
    assert {f"upload://c{i}.md" for i in range(6)} <= sources


def test_a_writer_outside_the_server_gives_409(client):
    from finesift.kb.manifest import kb_dir, writer_lock

    home = client.app.state.finesift.settings.home
    with writer_lock(kb_dir(home, "hb"), "hb"):
        body = error(upload(client, "hb", ("w.md", b"blocked write")), 409)
    assert "being written" in body["message"]


def test_write_queue_is_bounded():
    from finesift.server.kb_service import KBRegistry

    registry = KBRegistry(kb_settings("/nonexistent", kb_write_queue=2), state=None)  # type: ignore[arg-type]

    async def scenario():
        release = asyncio.Event()

        async def hold():
            async with registry.writing("kb"):
                await release.wait()

        tasks = [asyncio.create_task(hold()) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(Overloaded, match="already waiting"):
            async with registry.writing("kb"):
                pass
        release.set()
        await asyncio.gather(*tasks)
        async with registry.writing("kb"):
            pass

    asyncio.run(scenario())


def test_reads_are_bounded_and_time_out():
    import threading

    from finesift.errors import DeadlineExceeded
    from finesift.server.kb_service import KBRegistry

    settings = kb_settings("/nonexistent", queue_size=1, request_timeout=0.2)
    registry = KBRegistry(settings, state=None)  # type: ignore[arg-type]
    release = threading.Event()

    async def scenario():
        slow = asyncio.create_task(registry.read(lambda: release.wait(5)))
        await asyncio.sleep(0.05)
        with pytest.raises(Overloaded, match="in flight"):
            await registry.read(lambda: 1)
        with pytest.raises(DeadlineExceeded):
            await slow
        release.set()
        assert await registry.read(lambda: 2) == 2

    asyncio.run(scenario())


def test_fingerprint_mismatch_is_409(client):
    from finesift import load_embedder
    from finesift.kb.knowledge_base import KnowledgeBase

    settings = client.app.state.finesift.settings
    KnowledgeBase.create("other-model", settings=settings, embedder=load_embedder("fake:32")).close()
    body = error(post_json(client, "/v1/kbs/other-model/search", {"query": "x"}), 409)
    assert "other-model" in body["message"]
    error(upload(client, "other-model", ("a.md", b"text")), 409)
    assert client.get("/v1/kbs/other-model").status_code == 200  # info needs no model


def test_kb_routes_wait_for_the_models(tmp_path):
    from server_support import slow_services
    from starlette.testclient import TestClient

    app = create_app(kb_settings(tmp_path), services=slow_services(1.5))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        assert app.state.finesift.phase == "loading"
        error(post_json(c, "/v1/kbs", {"name": "early"}), 503)
        assert c.get("/v1/kbs").status_code == 200


# ---- auth and the page ----------------------------------------------------------------------------


def test_kb_routes_need_the_key(tmp_path):
    with ready_client(create_app(kb_settings(tmp_path, api_key=KEY))) as c:
        auth = {"Authorization": f"Bearer {KEY}"}
        requests = [
            ("GET", "/v1/kbs", None),
            ("POST", "/v1/kbs", {"name": "k"}),
            ("GET", "/v1/kbs/k", None),
            ("GET", "/v1/kbs/k/documents", None),
            ("POST", "/v1/kbs/k/search", {"query": "x"}),
            ("POST", "/v1/kbs/k/index", {"paths": ["x"]}),
            ("DELETE", "/v1/kbs/k/documents/0123456789abcdef", None),
            ("DELETE", "/v1/kbs/k", None),
        ]
        for method, path, body in requests:
            error(c.request(method, path, json=body), 401)
            assert c.request(method, path, json=body, headers=auth).status_code != 401, path
        error(upload(c, "k", ("a.md", b"x")), 401)
        assert c.get("/").status_code == 200 and c.get("/static/app.js").status_code == 200


def test_page_and_static_files(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert '<script src="/static/app.js"' in page.text and "http" not in page.text.split("<body>")[0]
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")
    for name in ("../app.py", "..%2Fapp.py", "index.htm", "kbs.py"):
        assert client.get(f"/static/{name}").status_code == 404


@pytest.mark.slow
def test_tiny_qwen3_searches_uploads_and_embeddings_run_concurrently(
    tmp_path, tiny_embedder, tiny_reranker, tiny_embedding_model, tiny_reranker_model
):
    """KB searches and uploads share the loaded models with the embeddings route; none fails."""
    from server_support import StaticServices

    settings = Settings(
        home=tmp_path,
        embedding={"model": str(tiny_embedding_model)},
        reranker={"model": str(tiny_reranker_model)},
    )
    words = [
        "database",
        "index",
        "cache",
        "query",
        "latency",
        "数据库",
        "索引",
        "缓存",
        "查询",
        "getUserName",
    ]
    with ready_client(create_app(settings, services=StaticServices(tiny_embedder, tiny_reranker))) as c:
        assert post_json(c, "/v1/kbs", {"name": "tiny"}).status_code == 201
        files = [
            (f"d{i}.md", " ".join(words[(i + j) % len(words)] for j in range(40)).encode()) for i in range(10)
        ]
        assert upload(c, "tiny", *files).json()["documents_added"] == 10

        def search(i):
            body = {"query": f"{words[i % len(words)]} {words[(i * 3) % len(words)]}"}
            return post_json(c, "/v1/kbs/tiny/search", body).status_code

        def embed(i):
            return post_json(c, "/v1/embeddings", {"input": words[: 1 + i % 8]}).status_code

        def add(i):
            return upload(c, "tiny", (f"u{i}.md", b"more text about the cache " * 10)).status_code

        calls = [(f, i) for i in range(12) for f in (search, embed)] + [(add, i) for i in range(3)]
        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(lambda call: call[0](call[1]), calls))
        assert codes == [200] * len(calls)
        hits = post_json(c, "/v1/kbs/tiny/search", {"query": "cache", "top_k": 3}).json()["hits"]
        assert len(hits) == 3 and all(0.0 <= h["score"] <= 1.0 for h in hits)
