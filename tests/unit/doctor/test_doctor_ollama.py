"""The doctor's Ollama reranker row against the protocol server: green, and each Ollama-side fault named."""

from __future__ import annotations

import pytest

from finesift.doctor.checks import RerankChecker
from finesift.doctor.diagnose import Thresholds
from finesift.doctor.model_card import CardReranker
from finesift.rerank.base import Reranker
from finesift.rerank.ollama import OllamaReranker
from finesift.rerank.transformers import TransformersReranker
from finesift.settings import RerankSettings
from finesift.testing.http import Faults, ServerState, protocol_server

pytestmark = [pytest.mark.slow, pytest.mark.service]
MODEL = "dengcao/Qwen3-Reranker-0.6B:F16"


def _chat_template_form(prompt: str) -> str:
    """The prompt as a chat template renders it: blank lines between the parts (vLLM #24242)."""
    return prompt.replace("\n<Query>: ", "\n\n<Query>: ").replace("\n<Document>: ", "\n\n<Document>: ")


@pytest.fixture(scope="module")
def checker(tiny_ollama_reranker_model) -> RerankChecker:
    """As ``finesift doctor`` builds it: the model card's code is the reference; finesift's transformers
    backend of the same checkpoint only replays known faults to name a failing row."""

    def replay() -> TransformersReranker:
        return TransformersReranker(tiny_ollama_reranker_model, device="cpu", dtype="float32")

    reference = CardReranker(
        tiny_ollama_reranker_model,
        instruction=None,
        max_length=RerankSettings().max_length,
        device="cpu",
        replay=replay,
    )
    return RerankChecker(reference, Thresholds())


@pytest.mark.parametrize(
    ("faults", "diagnosis"),
    [
        ({}, None),
        ({"swap_yes_no": True}, "swapped_yes_no"),
        ({"rewrite_prompt": _chat_template_form}, "template_drift"),
        ({"context_cap": 200}, "truncated_suffix"),
    ],
)
def test_ollama_rows_are_green_or_name_the_fault(ollama_generator, checker, faults, diagnosis) -> None:
    assert isinstance(checker.reference, CardReranker)  # the model card, not finesift
    state = ServerState(generator=ollama_generator, ollama_models=(MODEL,), faults=Faults(**faults))
    with protocol_server(state) as (url, _):
        backend = OllamaReranker(RerankSettings(model=MODEL, backend="ollama", url=url))
        backend.check_server()
        row = checker.check("ollama", Reranker(backend))
    assert row.diagnosis == diagnosis, row.explain()
    assert row.status == ("ok" if diagnosis is None else "fail")
    if diagnosis is None:
        assert row.metrics.max_delta is not None and row.metrics.max_delta < 1e-4
        assert backend.floored_pairs == 0


def test_the_row_says_how_many_pairs_were_floored() -> None:
    from types import SimpleNamespace

    from finesift.doctor.report import Row
    from finesift.doctor.run import _note_floored

    built = SimpleNamespace(backend=SimpleNamespace(floored_pairs=3, scored_pairs=10))
    row = _note_floored(Row("ollama", "reranker", "ok"), built)
    assert row.message == "3 of 10 pairs lacked 'yes' or 'no' in the top logprobs (bounded by -10)"
    clean = SimpleNamespace(backend=SimpleNamespace(floored_pairs=0, scored_pairs=10))
    assert _note_floored(Row("ollama", "reranker", "ok"), clean).message is None
