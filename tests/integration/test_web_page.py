"""The search page in real headless Chromium (Debian ``chromium``, driven by Playwright, no browser download).

The page talks to the real app (fake embedder and reranker); its Ask box to the real ``/v1/kbs/{kb}/ask``
route and the loopback chat model of :mod:`finesift.testing.chat`, so it renders what the server really
sends. Set ``FINESIFT_SCREENSHOTS=DIR`` to keep the screenshots.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from server_support import live_server, wait_ready

from finesift.server import app as server_app
from finesift.server.app import create_app
from finesift.settings import Settings
from finesift.testing.chat import ChatState, chat_server

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "Debian chromium is not installed (/usr/bin/chromium); apt-get install -y chromium",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra)")
pytest.importorskip("lancedb")
# A shared CI machine can be slow: wait up to 30 s for what the page must show (it never needs that long).
sync_api.expect.set_options(timeout=30_000)

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
MODELS_TEXT = "Qwen3 Embedding ships in Q8_0 and F16 builds; a b test. 我们的嵌入模型很快。"
#: What the loopback chat model answers: it cites passage 2 only, so a page that numbers citations by
#: position, or shows uncited passages, fails.
REPLY = "Add an index [2]."
ASKED = "如何优化数据库"  # two passages of db.md pass the reranker threshold; the answer cites the second
OFF_TOPIC = "how do I speed up queries?"  # no passage passes: the server refuses


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield browser
        browser.close()


def serve(home: Path, *, ask: bool = True, llm: str | None = None, **server):
    """The real app on the fake models; ``llm``: the loopback chat model's URL (``ask``: keep the route)."""
    chat = {"url": llm, "model": "tiny"} if llm else {}
    settings = Settings(
        home=home, embedding={"model": "fake"}, reranker={"model": "fake"}, llm=chat, server=server
    )
    modules = server_app.ROUTE_MODULES
    if not ask:
        server_app.ROUTE_MODULES = [m for m in modules if m != "finesift.server.routes.ask"]
    try:
        return create_app(settings)
    finally:
        server_app.ROUTE_MODULES = modules


def shot(page, tmp_path: Path, name: str) -> None:
    target = Path(os.environ.get("FINESIFT_SCREENSHOTS") or tmp_path) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True)


def test_create_upload_search_highlight_and_ask(browser, tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    (files / "db.md").write_text(DB_TEXT, encoding="utf-8")
    (files / "tuning.txt").write_text(EN_TEXT, encoding="utf-8")
    with chat_server(ChatState(reply=REPLY)) as (llm, chat):
        app = serve(tmp_path / "home", llm=llm)
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
            # The scores are the reranker's (the search reranked): labelled as such.
            assert all(s.startswith("relevance ") for s in page.locator("#results .score").all_inner_texts())

            _ask_cites_refuses_and_reports_a_broken_stream(page, chat)
            shot(page, tmp_path, "search-page.png")
            assert errors == []
            page.close()


def _ask_cites_refuses_and_reports_a_broken_stream(page, chat) -> None:
    """The Ask box against the real ``/v1/kbs/{kb}/ask`` and the loopback chat model."""
    sync_api.expect(page.locator("#ask-section")).to_be_visible()
    page.fill("#ask-query", ASKED)
    page.click("#ask-button")
    sync_api.expect(page.locator("#answer")).to_have_text(REPLY)
    # Only the cited passage, under the number the answer cites it by (the server's "number").
    sync_api.expect(page.locator("#citations li")).to_have_count(1)
    sync_api.expect(page.locator("#citations li")).to_have_text("[2] upload://db.md · [28:42]")
    sync_api.expect(page.locator("#answer")).not_to_have_class(re.compile("refused"))
    assert chat.requests and chat.requests[-1]["stream"] is True

    page.fill("#ask-query", OFF_TOPIC)
    page.click("#ask-button")
    sync_api.expect(page.locator("#answer")).to_contain_text("No relevant context")
    sync_api.expect(page.locator("#answer")).to_have_class(re.compile("refused"))
    sync_api.expect(page.locator("#ask-status")).to_contain_text("nothing is cited")
    sync_api.expect(page.locator("#citations li")).to_have_count(0)

    chat.faults.cut_after = 2  # the chat model's connection drops after two words
    page.fill("#ask-query", ASKED)
    page.click("#ask-button")
    sync_api.expect(page.locator("#ask-status")).to_contain_text("stopped early")
    sync_api.expect(page.locator("#message")).to_be_visible()
    assert page.locator("#message").inner_text().strip()
    sync_api.expect(page.locator("#answer")).to_have_text("Add an ")
    sync_api.expect(page.locator("#citations li")).to_have_count(0)
    chat.faults.cut_after = None


def test_highlights_whole_words_and_cjk_terms_and_labels_scores(browser, tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    (files / "models.md").write_text(MODELS_TEXT, encoding="utf-8")
    app = serve(tmp_path / "home")
    with live_server(app) as (url, _):
        wait_ready(app)
        page = browser.new_page()
        page.goto(url + "/")
        page.click("#new-kb-toggle")
        page.fill("#new-kb-name", "models")
        page.click("#new-kb-form button[type=submit]")
        sync_api.expect(page.locator("#kb-select")).to_have_value("models")
        page.set_input_files("#upload-input", [str(files / "models.md")])
        page.click("#upload-button")
        sync_api.expect(page.locator("#upload-status")).to_contain_text("1 added")

        page.fill("#query", "Q8_0 b 6 F16 嵌入模型")
        page.uncheck("#rerank")
        page.click("#search-button")
        sync_api.expect(page.locator("#results .hit").first).to_be_visible()
        marks = page.locator("#results mark").all_inner_texts()
        # Whole words only: no "b" inside "Embedding", no "0"/"6" inside "Q8_0"/"F16"; CJK as a substring.
        assert sorted(marks) == sorted(["Q8_0", "F16", "b", "嵌入模型"]), marks
        label = page.locator("#results .score").first
        sync_api.expect(label).to_contain_text("RRF ")
        assert "not a probability" in (label.get_attribute("title") or "")

        page.check("#rerank")
        page.click("#search-button")
        sync_api.expect(page.locator("#results .score").first).to_contain_text("relevance ")
        shot(page, tmp_path, "highlight.png")
        page.close()


def test_ask_without_a_chat_model_says_how_to_configure_one(browser, tmp_path):
    app = serve(tmp_path / "home")
    with live_server(app) as (url, _):
        wait_ready(app)
        page = browser.new_page()
        page.goto(url + "/")
        page.click("#new-kb-toggle")
        page.fill("#new-kb-name", "empty")
        page.click("#new-kb-form button[type=submit]")
        sync_api.expect(page.locator("#kb-select")).to_have_value("empty")
        sync_api.expect(page.locator("#ask-section")).to_be_visible()
        page.fill("#ask-query", "anything")
        page.click("#ask-button")
        sync_api.expect(page.locator("#message")).to_contain_text("FINESIFT_LLM__URL")
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


def test_the_ask_box_hides_itself_when_the_route_answers_404_or_501(browser, tmp_path):
    """The page's promise (app.js ``ask``): an Ask route that answers 404 (not served) or 501 (the answer
    extra missing) hides the Ask box instead of showing an error. The answer is stubbed in the browser,
    so the route is listed in the schema (the box shows) but refuses when asked."""
    app = serve(tmp_path / "home")
    with live_server(app) as (url, _):
        wait_ready(app)
        for n, status in enumerate((404, 501)):
            page = browser.new_page()
            page.route("**/v1/kbs/*/ask", _refuse_with(status))
            page.goto(url + "/")
            if n == 0:
                page.click("#new-kb-toggle")
                page.fill("#new-kb-name", "stubbed")
                page.click("#new-kb-form button[type=submit]")
            sync_api.expect(page.locator("#kb-select")).to_have_value("stubbed")
            sync_api.expect(page.locator("#ask-section")).to_be_visible()
            page.fill("#ask-query", "anything")
            page.click("#ask-button")
            sync_api.expect(page.locator("#ask-section")).to_be_hidden()
            assert "refused by the stub" not in page.locator("#message").inner_text()
            page.close()


def _refuse_with(status: int):
    body = '{"error": {"message": "refused by the stub", "type": "not_available", "code": null}}'

    def handler(route, request=None) -> None:
        route.fulfill(status=status, content_type="application/json", body=body)

    return handler
