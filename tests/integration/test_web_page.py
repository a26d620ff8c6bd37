"""The search page in real headless Chromium (Debian ``chromium``, driven by Playwright, no browser download).

Set ``FINESIFT_SCREENSHOTS=DIR`` to keep the screenshots.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from fastapi import Request
from server_support import live_server, wait_ready

from finesift.server import app as server_app
from finesift.server.app import create_app
from finesift.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "Debian chromium is not installed (/usr/bin/chromium); apt-get install -y chromium",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra)")
pytest.importorskip("lancedb")

pytestmark = pytest.mark.service
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KEY = "page-key"
DB_TEXT = "# 数据库\n如何优化数据库：建立索引，避免全表扫描。\n\n# 缓存\n热点数据放在缓存。"
EN_TEXT = "Database tuning: add an index to avoid a full table scan. Cache hot rows in memory."
DELTAS = ["Add an ", "index ", "[1]."]
CITATIONS = [{"index": 1, "doc_id": "0123456789abcdef", "source": "upload://db.md", "start": 0, "end": 10}]


def add_fake_ask(app) -> None:
    """A stand-in for ``POST /v1/kbs/{kb}/ask``: the SSE stream the page must render; 501 on request."""
    from fastapi.responses import JSONResponse, StreamingResponse

    async def ask(kb: str, request: Request):
        body = await request.json()
        if "unsupported" in body["query"]:
            error = {
                "message": "no generator configured",
                "type": "server_error",
                "code": "missing_dependency",
            }
            return JSONResponse({"error": error}, status_code=501)

        async def events():
            for delta in DELTAS:
                yield f"data: {json.dumps({'delta': delta})}\n\n"
                await asyncio.sleep(0.05)
            yield f"data: {json.dumps({'citations': CITATIONS})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    app.add_api_route("/v1/kbs/{kb}/ask", ask, methods=["POST"])


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield browser
        browser.close()


def serve(home: Path, *, ask: bool, **server):
    settings = Settings(home=home, embedding={"model": "fake"}, reranker={"model": "fake"}, server=server)
    # The real ask route needs a chat model; the page is tested against a scripted stand-in, or without one.
    modules = server_app.ROUTE_MODULES
    server_app.ROUTE_MODULES = [m for m in modules if m != "finesift.server.routes.ask"]
    try:
        app = create_app(settings)
    finally:
        server_app.ROUTE_MODULES = modules
    if ask:
        add_fake_ask(app)
    return app


def shot(page, tmp_path: Path, name: str) -> None:
    target = Path(os.environ.get("FINESIFT_SCREENSHOTS") or tmp_path) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True)


def test_create_upload_search_highlight_and_ask(browser, tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    (files / "db.md").write_text(DB_TEXT, encoding="utf-8")
    (files / "tuning.txt").write_text(EN_TEXT, encoding="utf-8")
    app = serve(tmp_path / "home", ask=True)
    with live_server(app) as (url, _):
        wait_ready(app)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url + "/")
        sync_api.expect(page.locator("#message")).to_contain_text("No knowledge base yet")

        page.click("#new-kb-toggle")
        page.fill("#new-kb-name", "handbook")
        page.click("#new-kb-form button[type=submit]")
        sync_api.expect(page.locator("#kb-select")).to_have_value("handbook")

        page.set_input_files("#upload-input", [str(files / "db.md"), str(files / "tuning.txt")])
        page.click("#upload-button")
        sync_api.expect(page.locator("#upload-status")).to_contain_text("2 added")
        sync_api.expect(page.locator("#kb-info")).to_contain_text("2 documents")

        page.fill("#query", "如何优化数据库 index")
        page.click("#search-button")
        hits = page.locator("#results .hit")
        sync_api.expect(hits.first).to_be_visible()
        assert hits.count() >= 2
        sources = page.locator("#results .source").all_inner_texts()
        assert any("upload://db.md" in s for s in sources) and any(
            "upload://tuning.txt" in s for s in sources
        )
        marks = {m.lower() for m in page.locator("#results mark").all_inner_texts()}
        assert "数据库" in marks and "index" in marks
        sync_api.expect(page.locator("#results mark").first).to_be_visible()

        sync_api.expect(page.locator("#ask-section")).to_be_visible()
        page.fill("#ask-query", "how do I speed up queries?")
        page.click("#ask-button")
        sync_api.expect(page.locator("#answer")).to_have_text("".join(DELTAS))
        sync_api.expect(page.locator("#citations li")).to_have_count(1)
        sync_api.expect(page.locator("#citations li")).to_contain_text("upload://db.md")
        shot(page, tmp_path, "search-page.png")

        page.fill("#ask-query", "unsupported question")
        page.click("#ask-button")
        sync_api.expect(page.locator("#ask-section")).to_be_hidden()
        assert errors == []
        page.close()


def test_key_prompt_and_no_ask_box_without_the_endpoint(browser, tmp_path):
    app = serve(tmp_path / "home", ask=False, api_key=KEY)
    with live_server(app) as (url, _):
        wait_ready(app)
        page = browser.new_page()
        page.goto(url + "/")
        sync_api.expect(page.locator("#key-section")).to_be_visible()
        page.fill("#api-key", KEY)
        page.click("#key-form button[type=submit]")
        sync_api.expect(page.locator("#key-section")).to_be_hidden()
        sync_api.expect(page.locator("#message")).to_contain_text("No knowledge base yet")
        sync_api.expect(page.locator("#ask-section")).to_be_hidden()
        shot(page, tmp_path, "key-prompt.png")
        page.close()
