"""From numbers to a named cause and its fix.

Each rule looks for the signature a known bug leaves on the probe set: a backend that drops the
EOS, pools the wrong token, pads on the right, normalises before slicing, drifts from the prompt
template, truncates long inputs, or emits degenerate scores. Where the reference model can replay
a bug (see :mod:`finesift.doctor.faults`), the rule asks which replay the backend matches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from finesift.doctor.compare import Metrics


@dataclass(frozen=True)
class Diagnosis:
    """A named cause, what it looks like, and how to fix it."""

    code: str
    title: str
    fix: str


CATALOGUE: dict[str, Diagnosis] = {
    d.code: d
    for d in (
        Diagnosis(
            "missing_eos",
            "missing EOS: texts are embedded without the trailing <|endoftext|>",
            "use a tokenizer/GGUF that appends <|endoftext|> (llama.cpp: re-convert, or add_eos_token=true)",
        ),
        Diagnosis(
            "wrong_pooling",
            "wrong pooling: vectors match mean pooling, not the last token",
            "pool the last token (llama.cpp: --pooling last; TEI/vLLM: pooling LAST)",
        ),
        Diagnosis(
            "right_padding",
            "right padding: a text's vector changes with its batch neighbours",
            "pad on the left, or pool at mask.sum(1)-1 instead of [:, -1]",
        ),
        Diagnosis(
            "normalise_before_slice",
            "normalise-before-slice: Matryoshka vectors are not unit length",
            "take the first d values of the raw vector, then L2-normalise",
        ),
        Diagnosis(
            "query_instruction",
            "query instruction: queries differ while documents agree",
            "apply 'Instruct: {task}\\nQuery:{query}' once (remote: query_format=qwen3, server-side off)",
        ),
        Diagnosis(
            "truncation",
            "truncation: long inputs differ while short ones agree",
            "raise the context and batch size to the longest input (llama.cpp: -c, -b and -ub >= max_length)",
        ),
        Diagnosis(
            "nan_vectors",
            "degenerate vectors: NaN, inf or all-zero",
            "run in bfloat16 or float32 (float16 overflows), and check the model files",
        ),
        Diagnosis(
            "template_drift",
            "template drift: the reranker prompt differs from the model card's",
            "build the prompt with finesift's Qwen3 template (rerank/prompts.py); vLLM: send token ids",
        ),
        Diagnosis(
            "truncated_suffix",
            "truncated suffix: long pairs lose the assistant suffix",
            "truncate only the document and keep prefix, query and suffix; raise the context length",
        ),
        Diagnosis(
            "swapped_yes_no",
            "swapped yes/no: scores are 1 - reference",
            "read P(yes) at the 'yes' token id (9693) against 'no' (2152); fix the conversion",
        ),
        Diagnosis(
            "constant_half",
            "degenerate scores: every score is about 0.5",
            "the yes/no head is missing (llama.cpp: rerank-head GGUF; vLLM: the Qwen3 reranker overrides)",
        ),
        Diagnosis(
            "all_zero",
            "degenerate scores: every score is about 0",
            "scores come from the wrong logits or positions; score the last position's yes/no logits",
        ),
        Diagnosis(
            "nan_scores",
            "degenerate scores: NaN",
            "run in bfloat16 or float32 (float16 overflows), and check the model files",
        ),
        Diagnosis(
            "deviates",
            "output differs from the reference for no recognised reason",
            "check both run the same model and revision, prefer F16/Q8_0 to 4-bit, compare prompt templates",
        ),
        Diagnosis("error", "the backend failed on the probe set", "see the error message"),
    )
}

#: Hypotheses replayed on the reference embedder, and the diagnosis a match means.
EMBEDDING_HYPOTHESES = {
    "missing_eos": "missing_eos",
    "mean_pooling": "wrong_pooling",
    "truncation": "truncation",
    "no_instruction": "query_instruction",
}


@dataclass(frozen=True)
class Thresholds:
    """Pass marks: cosine to the reference, |Δscore|, ranking agreement."""

    min_cosine: float = 0.99
    max_delta: float = 0.05
    min_agreement: float = 0.8
    norm_tolerance: float = 1e-3


def embedding_failed(m: Metrics, t: Thresholds) -> bool:
    d = m.details
    values = [m.cos_min, d.get("alone_vs_batch_min_cosine"), d.get("mrl_min_cosine")]
    if any(v is None or math.isnan(v) or v < t.min_cosine for v in values):
        return True
    return bool(d.get("mrl_max_norm_error", 0.0) > t.norm_tolerance or (m.agreement or 0.0) < t.min_agreement)


def rerank_failed(m: Metrics, t: Thresholds) -> bool:
    if m.max_delta is None or math.isnan(m.max_delta) or m.max_delta > t.max_delta:
        return True
    return (m.agreement or 0.0) < t.min_agreement


def diagnose_embedding(m: Metrics, t: Thresholds, *, long_index: int, hypotheses: dict[str, float]) -> str:
    """The code of the most likely cause for a failing embedding row."""
    d = m.details
    if m.cos_min is None or math.isnan(m.cos_min):
        return "nan_vectors"
    if d["mrl_max_norm_error"] > t.norm_tolerance:
        return "normalise_before_slice"
    if d["alone_vs_batch_min_cosine"] < t.min_cosine <= d["alone_min_cosine"]:
        return "right_padding"
    best = max(hypotheses, key=lambda k: hypotheses[k], default=None)
    if best is not None and hypotheses[best] >= t.min_cosine and hypotheses[best] > (m.cos_mean or 0.0):
        return EMBEDDING_HYPOTHESES[best]
    docs, queries = d["document_cosines"], d["query_cosines"]
    short_docs = [c for i, c in enumerate(docs) if i != long_index]
    if min(short_docs) >= t.min_cosine and min(queries) < t.min_cosine:
        return "query_instruction"
    if min(short_docs) >= t.min_cosine and min(queries) >= t.min_cosine and docs[long_index] < t.min_cosine:
        return "truncation"
    return "deviates"


def diagnose_rerank(
    m: Metrics, t: Thresholds, *, long_pairs: list[bool], hypotheses: dict[str, list[float]]
) -> str:
    """The code of the most likely cause for a failing reranker row."""
    ref = np.array(m.details["reference_scores"], dtype=np.float64)
    got = np.array(m.details["scores"], dtype=np.float64)
    if np.isnan(got).any() or not np.isfinite(got).all():
        return "nan_scores"
    if np.all(np.abs(got - 0.5) < 0.02) and np.std(got) < 0.01:
        return "constant_half"
    if np.max(got) < 0.02 <= np.max(ref):
        return "all_zero"
    if np.max(np.abs(got - (1.0 - ref))) <= t.max_delta:
        return "swapped_yes_no"
    for code, scores in hypotheses.items():
        if np.max(np.abs(got - np.array(scores))) <= t.max_delta / 5:
            return code
    delta = np.abs(got - ref)
    long_mask = np.array(long_pairs, dtype=bool)
    if (
        long_mask.any()
        and (~long_mask).any()
        and np.max(delta[~long_mask]) <= t.max_delta < np.max(delta[long_mask])
    ):
        return "truncated_suffix"
    return "deviates"
