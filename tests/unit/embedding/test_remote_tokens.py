"""Token counts from remote embedding servers, which report one total per request: shared out per text.

The promise (docs/guides/backends.md, the ``openai`` row): "token counts are the server's total shared
out". Each text gets a share by its length, the shares are whole and add up to the server's total,
and a request split into several batches adds up each batch's total.
"""

from __future__ import annotations

from typing import Any

import pytest

from finesift.embedding.openai import OpenAIEmbedder
from finesift.embedding.remote import split_tokens
from finesift.settings import EmbeddingSettings


@pytest.mark.parametrize(
    ("texts", "total", "expected"),
    [
        (["a" * 10, "b" * 30], 40, [10, 30]),
        (["a" * 10, "b" * 30], 8, [2, 6]),
        (["x", "yy", "zzz"], 7, [2, 2, 3]),  # 7 * (1, 2, 3) / 6 = 1.17, 2.33, 3.5: the remainder goes first
        (["", "word"], 5, [1, 4]),  # an empty text weighs as one character
        (["one"], 13, [13]),
    ],
)
def test_the_total_is_shared_out_by_text_length(texts: list[str], total: int, expected: list[int]) -> None:
    counts = split_tokens(texts, total)
    assert counts == expected
    assert sum(counts) == total and all(n >= 0 for n in counts)


@pytest.mark.parametrize("total", [None, 0, -3])
def test_no_usable_total_gives_zeros(total: int | None) -> None:
    assert split_tokens(["a", "bb"], total) == [0, 0]


class UsageServer:
    """An OpenAI embeddings endpoint in miniature: 4-dim vectors and one ``prompt_tokens`` total per
    request (a word count plus one per input, as a tokenizer with an end token would count)."""

    def __init__(self) -> None:
        self.totals: list[int] = []

    def post_json(self, url: str, payload: dict[str, Any]) -> dict[str, Any]:
        inputs = payload["input"]
        total = sum(len(t.split()) + 1 for t in inputs)
        self.totals.append(total)
        data = [{"index": i, "embedding": [1.0, 0.0, 0.0, float(i)]} for i in range(len(inputs))]
        return {"data": data, "usage": {"prompt_tokens": total, "total_tokens": total}}


def test_batches_add_up_to_every_total_the_server_reported() -> None:
    server = UsageServer()
    settings = EmbeddingSettings(model="served", url="http://127.0.0.1:1", batch_size=2)
    backend = OpenAIEmbedder(settings, client=server)  # type: ignore[arg-type]
    texts = ["short", "a much longer text with many words in it", "mid sized text", "x", "y y"]
    out = backend.embed(texts)
    assert len(server.totals) == 3  # batches of 2, 2 and 1
    assert sum(out.tokens) == sum(server.totals)
    assert out.tokens[1] > out.tokens[0]  # the longer text gets the larger share of its batch
    assert out.tokens[4] == server.totals[2]  # alone in its batch: the whole total
