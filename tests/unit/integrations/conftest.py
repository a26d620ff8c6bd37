"""Fixtures for the framework integrations: tiny Qwen3 models served over loopback, and a KB.

The HTTP tests talk to the real app under uvicorn on 127.0.0.1, exactly as a user's LangChain or
LlamaIndex program talks to ``finesift serve``.
"""

from __future__ import annotations

import pytest
from server_support import StaticServices, fake_settings, live_server, wait_ready

from finesift.kb.knowledge_base import KnowledgeBase
from finesift.server.app import create_app
from finesift.settings import Settings
from finesift.types import Document
from framework_support import KEY, TEXTS


@pytest.fixture(scope="module")
def model_server(tiny_embedder, tiny_reranker):
    """The tiny models behind ``finesift serve`` on loopback, with an API key: its base URL."""
    app = create_app(fake_settings(api_key=KEY), StaticServices(tiny_embedder, tiny_reranker))
    with live_server(app) as (url, _):
        wait_ready(app)
        yield url


@pytest.fixture(scope="module")
def kb_settings(tmp_path_factory) -> Settings:
    """Settings with the fake models and a home holding the knowledge base ``docs``."""
    settings = Settings(
        home=tmp_path_factory.mktemp("home"), embedding={"model": "fake"}, reranker={"model": "fake"}
    )
    with KnowledgeBase.create("docs", settings=settings) as kb:
        kb.add_documents([Document(source, text, "md") for source, text in TEXTS.items()])
    return settings


@pytest.fixture(scope="module")
def knowledge_base(kb_settings):
    with KnowledgeBase.open("docs", settings=kb_settings) as kb:
        yield kb


@pytest.fixture(scope="module")
def kb_server(kb_settings):
    """``finesift serve`` over the same home (fake models): its base URL."""
    app = create_app(kb_settings)
    with live_server(app) as (url, _):
        wait_ready(app)
        yield url
