"""Reranker invariants: prompt, yes/no ids, truncation keeps the suffix, batch and order independence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from finesift import load_reranker
from finesift.errors import BackendError, InvalidRequest
from finesift.rerank.prompts import PREFIX, SUFFIX, PromptTokens, body, single_token_id

QUERY = "what is an index"
DOCS = ["An index speeds up lookups.", "Bananas are yellow.", "索引是数据库中的数据结构。", "x" * 50]


def test_prompt_text_is_the_model_card_form() -> None:
    assert PREFIX.startswith("<|im_start|>system\nJudge whether the Document meets the requirements")
    assert PREFIX.endswith("<|im_end|>\n<|im_start|>user\n")
    assert SUFFIX == "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    assert body("I", "Q", "D") == "<Instruct>: I\n<Query>: Q\n<Document>: D"


def test_yes_no_ids_come_from_the_tokenizer(tiny_reranker) -> None:
    tokens: PromptTokens = tiny_reranker.backend.tokens
    assert (tokens.yes_id, tokens.no_id) == (9693, 2152)


def test_multi_token_answer_word_is_refused() -> None:
    class Tok:
        unk_token_id = None

        def convert_tokens_to_ids(self, word: str) -> int:
            return 1

        def encode(self, word: str, add_special_tokens: bool = False) -> list[int]:
            return [1, 2]

    with pytest.raises(BackendError, match="one token"):
        single_token_id(Tok(), "yes")


def test_truncation_cuts_only_the_document(tiny_reranker_model: Path) -> None:
    rr = load_reranker(str(tiny_reranker_model), dtype="float32", device="cpu", max_length=120)
    backend = rr.backend
    tok = backend.tokenizer
    rows, truncated = backend.build(QUERY, ["lorem ipsum " * 200], instruction=rr.default_instruction)
    assert truncated == 1 and len(rows[0]) == 120
    row = rows[0]
    assert row[: len(backend.tokens.prefix)] == backend.tokens.prefix
    assert row[-len(backend.tokens.suffix) :] == backend.tokens.suffix
    text = tok.decode(row)
    assert f"<Query>: {QUERY}\n<Document>: lorem" in text and rr.default_instruction in text
    out = rr.score_detailed(QUERY, ["lorem ipsum " * 200, "short doc"])
    assert out.truncated == 1 and 0.0 <= out.scores[0] <= 1.0


def test_query_too_long_for_max_length_is_refused(tiny_reranker_model: Path) -> None:
    rr = load_reranker(str(tiny_reranker_model), dtype="float32", device="cpu", max_length=100)
    with pytest.raises(InvalidRequest, match="shorten the query"):
        rr.score("very long query " * 40, ["doc"])


def test_alone_equals_in_batch_and_order_free(tiny_reranker) -> None:
    batch = tiny_reranker.score(QUERY, DOCS)
    alone = [tiny_reranker.score(QUERY, [d])[0] for d in DOCS]
    np.testing.assert_allclose(batch, alone, atol=1e-5)
    np.testing.assert_allclose(tiny_reranker.score(QUERY, DOCS[::-1])[::-1], batch, atol=1e-5)


def test_rerank_sorts_and_cuts(tiny_reranker) -> None:
    scores = tiny_reranker.score(QUERY, DOCS)
    ranked = tiny_reranker.rerank(QUERY, DOCS, top_n=2)
    assert len(ranked) == 2
    assert [r.index for r in ranked] == sorted(range(len(DOCS)), key=lambda i: -scores[i])[:2]


@pytest.mark.parametrize(
    ("query", "docs"), [("", ["d"]), ("q", [""]), ("q", "bare"), (None, ["d"]), ("q", [3])]
)
def test_bad_input_is_refused(tiny_reranker, query, docs) -> None:
    with pytest.raises(InvalidRequest):
        tiny_reranker.score(query, docs)


def test_empty_documents_give_no_scores(tiny_reranker) -> None:
    assert tiny_reranker.score(QUERY, []) == []


@pytest.mark.parametrize("top_n", [0, -1, True, 1.5])
def test_bad_top_n_is_refused(tiny_reranker, top_n) -> None:
    with pytest.raises(InvalidRequest, match="top_n"):
        tiny_reranker.rerank(QUERY, DOCS, top_n=top_n)
