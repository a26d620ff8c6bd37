"""Pure pieces of the server: the error table, validation messages, Host parsing, text checks."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")

from finesift.errors import (
    BackendError,
    Conflict,
    DeadlineExceeded,
    FinesiftError,
    InvalidRequest,
    MissingDependency,
    NotFound,
    Overloaded,
    StoreError,
    TooLarge,
)
from finesift.server.errors import ERROR_TABLE, NotReady, classify, error_body, validation_message
from finesift.server.schemas import check_text
from finesift.server.security import host_name, is_loopback


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (InvalidRequest("x"), 422, "invalid_request"),
        (TooLarge("x"), 413, "too_large"),
        (NotFound("x"), 404, "not_found"),
        (Conflict("x"), 409, "conflict"),
        (Overloaded("x"), 429, "overloaded"),
        (DeadlineExceeded("x"), 503, "deadline_exceeded"),
        (NotReady("x"), 503, "not_ready"),
        (MissingDependency("vllm", "vllm"), 501, "missing_dependency"),
        (BackendError("x"), 502, "backend_error"),
        (StoreError("x"), 503, "store_unavailable"),
        (FinesiftError("x"), 500, "internal_error"),
    ],
)
def test_error_table(error, status, code):
    got_status, _, got_code = classify(error)
    assert (got_status, got_code) == (status, code)


def test_error_table_lists_subclasses_before_their_bases():
    classes = [cls for cls, *_ in ERROR_TABLE]
    for i, cls in enumerate(classes):
        assert not any(issubclass(cls, earlier) for earlier in classes[:i]), cls


def test_error_body_is_one_line_openai_shape():
    body = error_body("first line\nsecond   line", type="invalid_request_error", code="c", param="input[2]")
    assert body == {
        "error": {
            "message": "first line second line",
            "type": "invalid_request_error",
            "code": "c",
            "param": "input[2]",
        }
    }


def test_validation_message_names_the_parameter():
    errors = [
        {"type": "string_type", "loc": ("body", "input", "str"), "msg": "Input should be a valid string"},
        {
            "type": "value_error",
            "loc": ("body", "input", "list[function-after[check_text(), str]]", 3),
            "msg": "Value error, text contains a NUL character (U+0000); remove it",
        },
    ]
    assert validation_message(errors) == (
        "input[3]: text contains a NUL character (U+0000); remove it",
        "input[3]",
    )
    assert validation_message([{"type": "missing", "loc": ("body",), "msg": "Field required"}])[1] is None


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("localhost:8000", "localhost"),
        ("LOCALHOST", "localhost"),
        ("[::1]:8000", "[::1]"),
        ("[::1]", "[::1]"),
        ("127.0.0.1", "127.0.0.1"),
        ("evil.com:80", "evil.com"),
        ("", ""),
    ],
)
def test_host_name(header, name):
    assert host_name(header) == name


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("example.com", False),
        ("localhost.evil", False),
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_check_text():
    assert check_text("普通 text") == "普通 text"
    with pytest.raises(ValueError, match="NUL"):
        check_text("a\x00b")
    with pytest.raises(ValueError, match=r"lone surrogate \(U\+D83D\) at 1"):
        check_text("a\ud83db")
