"""The Qwen3-Embedding evaluation's per-task instructions: published strings, rules, and the fallback."""

from __future__ import annotations

import hashlib
from importlib.resources import files

import pytest

from finesift.eval.task_instructions import TABLE_SOURCE, task_instruction
from finesift.rerank.prompts import DEFAULT_INSTRUCTION

# Typed here from the published table (evaluation/task_prompts.json, as copied in
# HKUST-KnowComp/Reasoning-Embedding@761051b); the package file must give exactly these.
PUBLISHED = {
    "SciFact": "Given a scientific claim, retrieve documents that support or refute the claim",
    "NFCorpus": "Given a question, retrieve relevant documents that best answer the question",
    "T2Retrieval": "Given a Chinese search query, retrieve web passages that answer the question",
    "CosQA": "Given a question about coding, retrieval code or passage that can solve user's question",
    "TRECCOVID": "Given a query on COVID-19, retrieve documents that answer the query",
    "CodeEditSearchRetrieval": "Given a piece of code, retrieval code that in the ",
    "Core17InstructionRetrieval": "Retrieval the relevant passage for the given query",
}


@pytest.mark.parametrize(("name", "text"), sorted(PUBLISHED.items()))
def test_retrieval_queries_get_the_published_instruction_and_documents_none(name: str, text: str) -> None:
    got = task_instruction(name, "Retrieval")
    assert (got.query, got.document, got.source) == (text, None, "qwen3-table")


def test_symmetric_and_non_retrieval_tasks_instruct_every_text() -> None:
    arguana = task_instruction("ArguAna", "Retrieval")
    claim = "Given a claim, find documents that refute the claim"
    assert (arguana.query, arguana.document) == (claim, claim)
    banking = task_instruction("Banking77Classification", "Classification")
    intents = "Given a online banking query, find the corresponding intents"
    assert (banking.query, banking.document) == (intents, intents)
    # STS and pair classification: the evaluation code's constant, whatever the table says (Ocnli: a stop).
    for name, kind in (("STSBenchmark", "STS"), ("Ocnli", "PairClassification")):
        got = task_instruction(name, kind)
        assert (got.query, got.document, got.source) == (
            "Retrieve semantically similar text",
            "Retrieve semantically similar text",
            "qwen3-rule",
        )


def test_tasks_outside_the_table_use_their_prompt_then_their_description() -> None:
    own = task_instruction("SomeNewRetrieval", "Retrieval", prompt={"query": "Given a law, find cases"})
    assert (own.query, own.document, own.source) == ("Given a law, find cases", None, "mteb-task-prompt")
    described = task_instruction(
        "SomeNewRetrieval",
        "Retrieval",
        description="Retrieve legal cases that cite a statute.  Built from court records. More text.",
    )
    assert (described.query, described.source) == (
        "Retrieve legal cases that cite a statute",
        "task-description",
    )
    bare = task_instruction("Bare", "Clustering", description="")
    assert bare.query == "Represent the text for the Bare task" == bare.document
    for got in (own, described, bare):
        assert got.query != DEFAULT_INSTRUCTION


def test_the_packaged_table_is_the_recorded_file() -> None:
    raw = files("finesift.eval").joinpath("qwen3_task_prompts.json").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == TABLE_SOURCE["sha256"]
    assert (
        TABLE_SOURCE["recorded"] and "761051bc8d9450a20bee0dddfb3c28c714c9d23a" in TABLE_SOURCE["copied_from"]
    )
