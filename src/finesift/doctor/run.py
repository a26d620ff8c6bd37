"""Build the reference and every requested backend from settings, check them, and report.

``run_doctor`` backs ``finesift doctor``; ``self_test`` is what the server runs at start-up with
``--self-test`` over the models it has loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from finesift.doctor.checks import EmbeddingChecker, RerankChecker, sanity_embedding, sanity_rerank
from finesift.doctor.diagnose import Thresholds
from finesift.doctor.model_card import LABEL, CardEmbedder, CardReranker, is_qwen3
from finesift.doctor.models import auto_backends, prepared, reference_backend
from finesift.doctor.report import DoctorReport, Row
from finesift.embedding.embedder import Embedder
from finesift.embedding.factory import build_embedder
from finesift.embedding.registry import BACKENDS as EMBED
from finesift.errors import FinesiftError, InvalidRequest, MissingDependency
from finesift.hub import resolve_for
from finesift.rerank.base import Reranker
from finesift.rerank.cross_encoder import is_causal_lm
from finesift.rerank.factory import build_reranker
from finesift.rerank.registry import BACKENDS as RERANK
from finesift.runtime.gguf import cached_conversion
from finesift.runtime.llamacpp import build_info, import_llama_cpp
from finesift.settings import ModelSettings, Settings

log = logging.getLogger(__name__)

#: The rerank backend a doctor backend name stands for, where the names differ.
RERANK_NAME = {"openai": "remote", "remote": "remote"}
#: Backends that cannot rerank, and why.
NO_RERANK = {"fake": "not a Qwen3 model"}
#: Backends that cannot embed.
NO_EMBED = {"remote": "the remote reranker has no embedding role; use openai"}
#: The reference of a model the Qwen3 model cards do not describe (not a Qwen3 checkpoint).
FALLBACK = "transformers float32 (not a Qwen3 checkpoint: no model card)"


@dataclass(frozen=True)
class DoctorOptions:
    """What to check and how: backend names, per-backend URLs and served names, GGUF files."""

    backends: tuple[str, ...] = ("auto",)
    urls: dict[str, str] = field(default_factory=dict)
    served_models: dict[str, str] = field(default_factory=dict)
    gguf: str | None = None
    reranker_gguf: str | None = None
    gguf_type: str = "f16"
    device: str = "auto"
    thresholds: Thresholds = field(default_factory=Thresholds)


def parse_backends(value: str) -> tuple[str, ...]:
    """``"transformers,openai"`` -> names, without blanks or repeats."""
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    if not names:
        raise InvalidRequest("--backends needs at least one name, e.g. transformers,openai,llamacpp")
    return names


def parse_pairs(values: Sequence[str], option: str) -> dict[str, str]:
    """``["openai=http://..."]`` -> ``{"openai": "http://..."}``."""
    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise InvalidRequest(
                f"{option} takes NAME=VALUE (e.g. openai=http://127.0.0.1:8000), not {item!r}"
            )
        out[name.strip()] = value.strip()
    return out


def reference_settings(section: ModelSettings, device: str) -> Any:
    """The same model through finesift's transformers backend in float32 (replays faults for diagnoses)."""
    backend = reference_backend(section)
    return section.model_copy(update={"backend": backend, "dtype": "float32", "device": device, "url": None})


def reference_embedder(settings: Settings, device: str) -> tuple[Any, str]:
    """The Qwen3-Embedding model card's code on the configured model, and its label.

    A checkpoint that is not Qwen3 has no model card to follow: finesift's transformers backend in
    float32 stands in, and the label says so.
    """
    section = settings.embedding

    def finesift_fp32() -> Embedder:
        return build_embedder(reference_settings(section, device), settings.hub)

    path = resolve_for(section, settings.hub)
    if not is_qwen3(path):
        return finesift_fp32(), FALLBACK.replace("transformers", reference_backend(section), 1)
    card = CardEmbedder(
        path,
        instruction=section.instruction,
        max_length=section.max_length,
        device=device,
        replay=lambda: finesift_fp32().backend,
    )
    return card, LABEL


def reference_reranker(settings: Settings, device: str) -> tuple[Any, str]:
    """The Qwen3-Reranker model card's code on the configured model, and its label (see above)."""
    section = settings.reranker

    def finesift_fp32() -> Reranker:
        return build_reranker(reference_settings(section, device), settings.hub)

    path = resolve_for(section, settings.hub)
    if not (is_qwen3(path) and is_causal_lm(path)):
        return finesift_fp32(), FALLBACK
    card = CardReranker(
        path,
        instruction=section.instruction,
        max_length=section.max_length,
        device=device,
        replay=lambda: finesift_fp32().backend,
    )
    return card, LABEL


def _label(labels: Sequence[str]) -> str:
    return "; ".join(dict.fromkeys(labels)) or LABEL


def _candidate_settings(section: Any, name: str, options: DoctorOptions, home: Path, role: str) -> Any:
    """Settings for backend ``name``; ``--url``/``--served-model`` accept the doctor name or the backend's."""
    backend = RERANK_NAME.get(name, name) if role == "reranker" else name
    update: dict[str, Any] = {"backend": backend, "device": options.device}
    if backend in ("openai", "ollama", "remote"):
        update["url"] = options.urls.get(name) or options.urls.get(backend) or section.url
        update["model"] = options.served_models.get(name, options.served_models.get(backend, section.model))
        if role == "embedding" and section.query_format == "auto":
            update["query_format"] = "qwen3"
    if name == "llamacpp":
        update["model"] = _gguf_for(section.model, options, home, role)
    return section.model_copy(update=update)


def _gguf_for(model: str, options: DoctorOptions, home: Path, role: str) -> str:
    given = options.gguf if role == "embedding" else options.reranker_gguf
    if given:
        return given
    if model.lower().endswith(".gguf") or model.startswith("ollama:"):
        return model
    import_llama_cpp()  # skip before converting when llama.cpp is not there to run the file

    return str(cached_conversion(model, home / "cache" / "gguf", kind=role, file_type=options.gguf_type))


def _build(role: str, name: str, section: Any, settings: Settings, options: DoctorOptions) -> Any:
    """The candidate object, or ``("skip"|"fail", reason)``."""
    table = _registry(role)
    backend = RERANK_NAME.get(name, name) if role == "reranker" else name
    if backend not in table:
        return "skip", f"no {role} backend {backend!r} is registered (known: {', '.join(sorted(table))})"
    if role == "reranker" and backend == "sentence-transformers" and _causal_lm(section.model):
        return (
            "skip",
            "sentence-transformers' CrossEncoder does not run causal-LM rerankers such as Qwen3-Reranker",
        )
    try:
        cand = _candidate_settings(section, name, options, settings.home, role)
        if role == "embedding":
            return build_embedder(cand, settings.hub)
        return build_reranker(cand, settings.hub)
    except MissingDependency as exc:
        return "skip", str(exc)
    except FinesiftError as exc:
        return "fail", " ".join(str(exc).split())


def _note_floored(row: Row, built: Any) -> Row:
    """Say how many pairs a logprob backend (Ollama) scored with a floored "yes" or "no"."""
    floored = getattr(getattr(built, "backend", None), "floored_pairs", 0)
    if isinstance(floored, int) and floored > 0:
        scored = built.backend.scored_pairs
        note = f"{floored} of {scored} pairs lacked 'yes' or 'no' in the top logprobs (bounded by -10)"
        row.message = f"{row.message}; {note}" if row.message else note
    return row


def _note_build(row: Row) -> Row:
    """Name the llama.cpp build a ``llamacpp`` row ran on (native or portable, the OpenMP wait)."""
    if row.backend == "llamacpp" and row.status != "skip":
        note = build_info()
        row.message = f"{row.message}; {note}" if row.message else note
    return row


def _causal_lm(model: str) -> bool:
    return Path(model).expanduser().is_dir() and is_causal_lm(Path(model).expanduser())


def _registry(role: str) -> dict[str, Any]:
    return EMBED if role == "embedding" else RERANK


def run_doctor(settings: Settings, options: DoctorOptions, *, rerank: bool = True) -> DoctorReport:
    """Check every backend in ``options`` against the model cards' code (fp32) on the configured models."""
    rows: list[Row] = []
    settings = prepared(settings)
    options = replace(options, backends=auto_backends(options.backends, settings.embedding))
    reference, label = reference_embedder(settings, options.device)
    labels = [label]
    checker = EmbeddingChecker(reference, options.thresholds)
    for name in options.backends:
        if name in NO_EMBED:
            rows.append(Row(name, "embedding", "skip", message=NO_EMBED[name]))
            continue
        log.info("doctor: embedding backend %s", name)
        rows.append(
            _note_build(checker.check(name, _build("embedding", name, settings.embedding, settings, options)))
        )
    if rerank:
        ref_rr, label = reference_reranker(settings, options.device)
        labels.append(label)
        rr_checker = RerankChecker(ref_rr, options.thresholds)
        for name in options.backends:
            if name in NO_RERANK:
                rows.append(Row(name, "reranker", "skip", message=NO_RERANK[name]))
                continue
            log.info("doctor: reranker backend %s", name)
            built = _build("reranker", name, settings.reranker, settings, options)
            rows.append(_note_build(_note_floored(rr_checker.check(name, built), built)))
    models = {"embedding": settings.embedding.model, "reranker": settings.reranker.model if rerank else None}
    return DoctorReport(rows, _label(labels), models)


def self_test(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    reranker: Reranker | None = None,
    thresholds: Thresholds | None = None,
) -> DoctorReport:
    """The start-up probe: the loaded models against the model cards' code (fp32) on the same checkpoints.

    Where no reference can be loaded (a fake or remote-only model, transformers not installed),
    the row runs sanity checks only (finite, batch == alone, unit-norm slices, non-degenerate scores)
    and says so.
    """
    thresholds = thresholds or Thresholds()
    rows: list[Row] = []
    labels: list[str] = []
    if embedder is not None:
        rows.append(_self_test_embedding(settings, embedder, thresholds, labels))
    if reranker is not None:
        rows.append(_self_test_rerank(settings, reranker, thresholds, labels))
    models = {
        "embedding": embedder.model_id if embedder else None,
        "reranker": reranker.model_id if reranker else None,
    }
    return DoctorReport(rows, _label(labels), models)


def _self_test_embedding(
    settings: Settings, embedder: Embedder, thresholds: Thresholds, labels: list[str]
) -> Row:
    name = embedder.info.backend
    try:
        reference, label = reference_embedder(settings, "cpu")
        labels.append(label)
    except FinesiftError as exc:
        row = sanity_embedding(name, embedder, thresholds)
        row.message = f"no reference ({' '.join(str(exc).split())[:160]}): sanity checks only"
        return row
    return EmbeddingChecker(reference, thresholds).check(name, embedder)


def _self_test_rerank(
    settings: Settings, reranker: Reranker, thresholds: Thresholds, labels: list[str]
) -> Row:
    name = reranker.info.backend
    try:
        reference, label = reference_reranker(settings, "cpu")
        labels.append(label)
    except FinesiftError as exc:
        row = sanity_rerank(name, reranker)
        row.message = f"no reference ({' '.join(str(exc).split())[:160]}): sanity checks only"
        return row
    return RerankChecker(reference, thresholds).check(name, reranker)
