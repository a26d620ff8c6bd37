"""The chat client against the deterministic loopback chat server: answers, streaming, faults."""

from __future__ import annotations

import socket

import pytest

from finesift.answer.llm import ChatClient, ThinkFilter
from finesift.errors import BackendError, InvalidRequest
from finesift.settings import LLMSettings
from finesift.testing.chat import NO_ANSWER, ChatState, chat_server

pytestmark = pytest.mark.service
MESSAGES = [
    {"role": "system", "content": "rules"},
    {"role": "user", "content": '<passage id="1" source="a">\nUse an index. More text.\n</passage>\n\nq'},
]


@pytest.fixture
def client():
    """Build chat clients; all are closed after the test."""
    made: list[ChatClient] = []

    def make(url: str, **settings: object) -> ChatClient:
        made.append(ChatClient(LLMSettings(url=url, model="tiny-chat", **settings)))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for chat in made:
        chat.close()


def test_complete_and_stream_give_the_same_answer(client) -> None:
    with chat_server() as (url, state):
        chat = client(url, max_retries=0)
        whole = chat.complete(MESSAGES)
        pieces = list(chat.stream(MESSAGES))
    assert whole == "Use an index. [1]"
    assert len(pieces) > 1 and "".join(pieces) == whole
    sent = state.requests[0]
    assert sent["model"] == "tiny-chat" and sent["messages"] == MESSAGES and sent["stream"] is False
    assert state.requests[1]["stream"] is True and sent["max_tokens"] == 1024


def test_no_passages_no_answer(client) -> None:
    with chat_server() as (url, _):
        assert client(url).complete([{"role": "user", "content": "hi"}]) == NO_ANSWER


@pytest.mark.parametrize("mode", ["complete", "stream"])
def test_think_blocks_are_removed(client, mode: str) -> None:
    with chat_server() as (url, state):
        state.faults.think = True
        chat = client(url)
        text = chat.complete(MESSAGES) if mode == "complete" else "".join(chat.stream(MESSAGES))
    assert text == "Use an index. [1]"


@pytest.mark.parametrize("size", [1, 2, 3, 5, 100])
def test_think_filter_handles_tags_split_anywhere(size: int) -> None:
    text = "<think>\nplan <b> steps\n</think>\n\nAnswer with <thin> literal [1]<"
    think = ThinkFilter()
    out = "".join(think.feed(text[i : i + size]) for i in range(0, len(text), size)) + think.flush()
    assert out == "Answer with <thin> literal [1]<"


def test_transient_failures_are_retried(client) -> None:
    with chat_server(ChatState()) as (url, state):
        state.faults.failures, state.faults.fail_status = 2, 503
        chat = client(url, max_retries=2)
        chat.client.retry = type(chat.client.retry)(max_retries=2, backoff_s=0.01)
        assert "".join(chat.stream(MESSAGES)) == "Use an index. [1]"
        assert len(state.requests) == 3


@pytest.mark.parametrize(
    ("fault", "words"), [("garbage", "not (JSON|an event stream)"), ("no_choices", "without 'choices'")]
)
@pytest.mark.parametrize("mode", ["complete", "stream"])
def test_garbage_answers_are_clear_errors(client, fault: str, words: str, mode: str) -> None:
    with chat_server() as (url, state):
        setattr(state.faults, fault, True)
        chat = client(url, max_retries=0)
        with pytest.raises(BackendError, match=words):
            chat.complete(MESSAGES) if mode == "complete" else list(chat.stream(MESSAGES))


def test_unreachable_endpoint_is_a_clear_error(client) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        chat = client(f"http://127.0.0.1:{port}/v1", max_retries=1)
        chat.client.retry = type(chat.client.retry)(max_retries=1, backoff_s=0.01)
        with pytest.raises(BackendError, match=r"127\.0\.0\.1:\d+/v1/chat/completions .*connection failed"):
            list(chat.stream(MESSAGES))


def test_a_stalled_endpoint_times_out(client) -> None:
    with chat_server() as (url, state):
        state.faults.stalls, state.faults.stall_s = 5, 1.0
        chat = client(url, max_retries=0, timeout_s=0.2)
        with pytest.raises(BackendError, match=r"timed out after 0\.2s"):
            chat.complete(MESSAGES)


def test_missing_configuration_names_the_flags(client) -> None:
    with pytest.raises(InvalidRequest, match="--llm-url and --llm-model"):
        ChatClient(LLMSettings())
    with pytest.raises(InvalidRequest, match="http"):
        client("localhost:11434")


def test_a_stream_cut_mid_answer_is_an_error_not_a_short_answer(client) -> None:
    with chat_server() as (url, state):
        state.faults.cut_after = 2
        pieces: list[str] = []
        with pytest.raises(BackendError, match=r"ended its stream before the answer was complete"):
            pieces.extend(client(url, max_retries=0).stream(MESSAGES))
        assert pieces == ["Use ", "an "]  # what arrived was shown, then the failure is reported
