"""Which Milvus servers get a flush after each commit (Milvus Lite only), and that a failed flush
does not fail the commit it follows."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from finesift.store.milvus_client import is_lite, seal


@pytest.mark.parametrize(
    ("version", "lite"), [("milvus_lite-3.2.2", True), ("v2.5.4", False), ("2.6.0", False)]
)
def test_only_milvus_lite_is_lite(version: str, lite: bool) -> None:
    assert is_lite(SimpleNamespace(get_server_version=lambda: version)) is lite


def test_a_failed_flush_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    flushed: list[str] = []

    def flush(name: str) -> None:
        if name == "b":
            raise RuntimeError("server busy")
        flushed.append(name)

    with caplog.at_level(logging.WARNING, logger="finesift.store.milvus_client"):
        seal(SimpleNamespace(flush=flush), ["a", "b", "c"])
    assert flushed == ["a", "c"] and "flushing b failed" in caplog.text
