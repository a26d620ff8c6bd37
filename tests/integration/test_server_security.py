"""Security: bind refusal, Bearer auth on every route but the probes, Host check, CORS, no key leaks."""

from __future__ import annotations

import logging

import pytest
from server_support import fake_settings, post_json, ready_client

from finesift.errors import InvalidRequest
from finesift.server.app import create_app

KEY = "s3cret-key-for-tests"
# The probes (/health, /ready: a readiness probe has no key) and the page's static files.
PUBLIC = {"/health", "/ready", "/", "/static/{name}"}


def routes_of(app):
    """Every (method, path) the app serves: the API routes (from the schema) and the docs routes."""
    out = {(method.upper(), path) for path, ops in app.openapi()["paths"].items() for method in ops}
    pending = list(app.routes)
    while pending:
        route = pending.pop()
        # Newer FastAPI keeps included routers as objects of their own; walk into them.
        inner = getattr(route, "original_router", None)
        if inner is not None:
            pending.extend(inner.routes)
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":
                out.add((method, route.path))
    return sorted(out)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    settings = fake_settings(api_key=KEY).model_copy(update={"home": tmp_path_factory.mktemp("home")})
    app = create_app(settings)
    with ready_client(app) as client:
        yield app, client


def test_every_route_but_the_probes_needs_the_key(keyed):
    app, client = keyed
    routes = routes_of(app)
    paths = {path for _, path in routes}
    assert {
        "/v1/embeddings",
        "/v1/rerank",
        "/v2/rerank",
        "/v1/models",
        "/ready",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/health",
        "/v1/kbs",
        "/v1/kbs/{kb}",
        "/v1/kbs/{kb}/documents",
        "/v1/kbs/{kb}/documents/{doc_id}",
        "/v1/kbs/{kb}/index",
        "/v1/kbs/{kb}/search",
        "/",
        "/static/{name}",
    } <= paths
    for method, path in routes:
        without = client.request(method, path)
        wrong = client.request(method, path, headers={"Authorization": "Bearer wrong"})
        basic = client.request(method, path, headers={"Authorization": f"Basic {KEY}"})
        if path in PUBLIC:
            # The page's static files hold no data; the page sends the key with its API calls.
            assert without.status_code in (200, 404), path
            continue
        for response in (without, wrong, basic):
            assert response.status_code == 401, (method, path)
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json()["error"]["type"] == "authentication_error"
        good = client.request(method, path, headers={"Authorization": f"Bearer {KEY}"})
        assert good.status_code != 401, (method, path)


def test_the_key_works_for_real_requests_and_never_leaks(keyed, caplog):
    _, client = keyed
    caplog.set_level(logging.DEBUG)
    ok = post_json(client, "/v1/embeddings", {"input": "x"}, headers={"Authorization": f"Bearer {KEY}"})
    assert ok.status_code == 200
    bad = post_json(client, "/v1/embeddings", {"input": "x"}, headers={"Authorization": f"Bearer {KEY}x"})
    assert bad.status_code == 401
    assert KEY not in bad.text and KEY not in caplog.text


def test_openapi_declares_the_bearer_scheme(keyed):
    _, client = keyed
    schema = client.get("/openapi.json", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert schema["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert schema["paths"]["/health"]["get"]["security"] == []
    assert schema["paths"]["/v1/embeddings"]["post"]["security"] == [{"bearer": []}]
    assert "401" in schema["paths"]["/v1/embeddings"]["post"]["responses"]


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::", "example.com"])
def test_non_loopback_bind_without_key_refuses_to_start(host):
    with pytest.raises(InvalidRequest, match="--api-key"):
        create_app(fake_settings(host=host))
    create_app(fake_settings(host=host, api_key=KEY))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_bind_needs_no_key(host):
    create_app(fake_settings(host=host))


def test_empty_key_is_refused():
    with pytest.raises(InvalidRequest, match="empty"):
        create_app(fake_settings(api_key="  "))


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:8000", 200),
        ("localhost:8000", 200),
        ("localhost", 200),
        ("[::1]:8000", 200),
        ("LOCALHOST:1", 200),
        ("my-box.lan:8000", 200),
        ("evil.example:8000", 400),
        ("127.0.0.1.nip.io", 400),
        ("", 400),
        ("attacker.com", 400),
    ],
)
def test_host_header_is_checked_on_loopback(host, status):
    with ready_client(create_app(fake_settings(allowed_hosts=("my-box.lan",)))) as client:
        response = client.get("/ready", headers={"Host": host})
        assert response.status_code == status, host
        if status == 400:
            assert response.json()["error"]["code"] == "host_not_allowed"


def test_no_host_check_when_bound_publicly_with_a_key():
    with ready_client(create_app(fake_settings(host="0.0.0.0", api_key=KEY))) as client:
        response = client.get("/health", headers={"Host": "server.example.com"})
        assert response.status_code == 200


def test_cors_is_off_by_default(keyed):
    with ready_client(create_app(fake_settings())) as client:
        preflight = client.options(
            "/v1/embeddings",
            headers={
                "Origin": "https://site.example",
                "Access-Control-Request-Method": "POST",
            },
        )
        assert "access-control-allow-origin" not in preflight.headers
        response = client.get("/health", headers={"Origin": "https://site.example"})
        assert "access-control-allow-origin" not in response.headers


def test_cors_allows_only_configured_origins():
    app = create_app(fake_settings(cors_origins=("https://app.example",), api_key=KEY))
    with ready_client(app) as client:
        preflight = client.options(
            "/v1/embeddings",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        other = client.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_the_api_key_help_names_every_route_open_without_it():
    from finesift.settings import ServerSettings

    help_text = ServerSettings.model_fields["api_key"].description or ""
    for path in PUBLIC:
        assert path.removesuffix("{name}") in help_text, path


def test_head_answers_like_get_on_the_open_pages(keyed):
    _, client = keyed
    for path in ("/", "/static/app.js", "/health", "/ready"):
        head, get = client.head(path), client.get(path)
        assert head.status_code == get.status_code == 200, path
        assert head.headers["content-type"] == get.headers["content-type"] and head.content == b""
