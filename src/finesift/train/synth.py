"""Synthesize query–passage pairs with a chat model, the Qwen3 Embedding report's way.

For each passage (``per_chunk`` times): offer the configuration call the five personas most
similar to the passage under the embedder, then ask for one query with the chosen character,
question type and difficulty, a seeded length and language. Each finished job is one journal line
in ``out``, so a re-run after a crash continues; :func:`finesift.train.synth_output.finalize` then
filters (cosine, duplicates) and writes the BEIR folder and the report.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from finesift.embedding.embedder import Embedder
from finesift.errors import BackendError, FinesiftError, InvalidRequest
from finesift.train import synth_prompts as prompts
from finesift.train.journal import Journal
from finesift.train.passages import Passage, fingerprint
from finesift.train.personas import nearest_personas
from finesift.train.synth_output import OutputPolicy, SynthReport, finalize

log = logging.getLogger(__name__)
T = TypeVar("T")
JOURNAL = "synth-journal.jsonl"
#: Target lengths in words: keyword queries are short, the others vary.
KEYWORD_LENGTHS = (2, 3, 4, 5)
QUERY_LENGTHS = (6, 8, 10, 15, 20, 30)
#: Failures to reach the chat model, with no reply yet, after which a run stops.
DEAD_ENDPOINT = 8
#: Passages embedded per call (one progress step).
EMBED_STEP = 256
Complete = Callable[[list[dict[str, str]]], str]


@dataclass(frozen=True)
class SynthConfig:
    """How many queries, which filter, how the run behaves. ``languages`` may hold ``auto``."""

    per_chunk: int = 1
    min_cosine: float = 0.7
    max_chunks: int | None = None
    languages: tuple[str, ...] = ("auto",)
    concurrency: int = 4
    seed: int = 0
    attempts: int = 3
    dev_fraction: float = 0.1
    progress: bool = False

    def check(self) -> None:
        if self.per_chunk < 1 or self.concurrency < 1 or self.attempts < 1:
            raise InvalidRequest("--per-chunk, --concurrency and --attempts must be at least 1")
        if self.max_chunks is not None and self.max_chunks < 1:
            raise InvalidRequest(f"--max-chunks must be positive, not {self.max_chunks}")
        if not -1.0 <= self.min_cosine <= 1.0:
            raise InvalidRequest(f"--min-cosine must be within [-1, 1], not {self.min_cosine}")
        if not 0.0 <= self.dev_fraction < 1.0:
            raise InvalidRequest(f"--dev-fraction must be within [0, 1), not {self.dev_fraction}")
        if not self.languages or not all(code.strip() for code in self.languages):
            raise InvalidRequest("--languages needs at least one language code (or auto)")


@dataclass(frozen=True)
class Job:
    """One query to write: the ``k``-th for passage ``passage``, with its candidate personas."""

    key: str
    passage: Passage
    personas: tuple[str, ...]


def select(passages: Sequence[Passage], config: SynthConfig) -> list[Passage]:
    """The passages to write queries for: all, or a seeded sample of ``max_chunks`` in corpus order."""
    if config.max_chunks is None or config.max_chunks >= len(passages):
        return list(passages)
    chosen = sorted(random.Random(config.seed).sample(range(len(passages)), config.max_chunks))
    return [passages[i] for i in chosen]


def plan_jobs(
    selected: Sequence[Passage], vectors: np.ndarray, embedder: Embedder, personas: Sequence[str], k: int
) -> list[Job]:
    """Jobs in a fixed order; candidates are the personas nearest to each passage's vector."""
    persona_vectors = embedder.embed_documents(list(personas))
    nearest = nearest_personas(vectors, persona_vectors)
    return [
        Job(f"{p.id}|{n}", p, tuple(personas[i] for i in near))
        for p, near in zip(selected, nearest, strict=True)
        for n in range(k)
    ]


class Synthesizer:
    """Runs the two calls per job with bounded retries; failures become records, never exceptions."""

    def __init__(self, complete: Complete, config: SynthConfig) -> None:
        self.complete = complete
        self.config = config

    def run(self, job: Job) -> dict[str, Any]:
        """The journal record of one job: ``status`` ok, invalid_json, refused or llm_failure."""
        rng = random.Random(f"{self.config.seed}|{job.key}")
        code = rng.choice(self.config.languages)
        language = prompts.language_name(
            prompts.detect_language(job.passage.text) if code == "auto" else code
        )
        record: dict[str, Any] = {"key": job.key, "passage": job.passage.id, "language": language}
        candidates = list(job.personas)
        try:
            chosen = self._ask(
                prompts.config_messages(job.passage.text, candidates),
                lambda text: prompts.parse_config(text, candidates),
            )
            lengths = KEYWORD_LENGTHS if chosen.question_type == "keywords" else QUERY_LENGTHS
            length = lengths[int(rng.random() * len(lengths))]
            query = self._ask(
                prompts.query_messages(job.passage.text, chosen, length=length, language=language),
                prompts.parse_query,
            )
        except prompts.ReplyError as exc:
            return {**record, "status": exc.kind, "reason": str(exc)}
        except FinesiftError as exc:
            return {**record, "status": "llm_failure", "reason": " ".join(str(exc).split())}
        return {
            **record, "status": "ok", "query": query, "character": chosen.character,
            "question_type": chosen.question_type, "difficulty": chosen.difficulty, "length": length,
        }  # fmt: skip

    def _ask(self, messages: list[dict[str, str]], parse: Callable[[str], T]) -> T:
        """``parse`` of the reply, asking again (up to ``attempts`` in all) when it is unusable."""
        error: prompts.ReplyError | None = None
        for _ in range(self.config.attempts):
            try:
                return parse(self.complete(messages))
            except prompts.ReplyError as exc:
                error = exc
        assert error is not None
        raise prompts.ReplyError(error.kind, f"{error} (after {self.config.attempts} attempts)")


def run_jobs(jobs: Sequence[Job], journal: Journal, synthesizer: Synthesizer) -> int:
    """Run the jobs the journal lacks (or that failed to reach the chat model), ``concurrency`` at a time.

    Returns how many ran now. When the endpoint fails every request from the start (down, wrong URL
    or model), stops with :class:`BackendError` after ``DEAD_ENDPOINT`` failures instead of recording
    a failure for every job; a re-run asks again for every job that failed that way.
    """
    from tqdm import tqdm

    pending = [job for job in jobs if _pending(journal, job.key)]
    config = synthesizer.config
    bar = tqdm(
        total=len(jobs), initial=len(jobs) - len(pending), desc="synth", unit="query",
        disable=not config.progress, dynamic_ncols=True,
    )  # fmt: skip
    tally = _Tally(limit=max(DEAD_ENDPOINT, 2 * config.concurrency))
    running: set[Future[dict[str, Any]]] = set()
    with bar, ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="synth") as pool:
        try:
            for job in pending:
                running.add(pool.submit(synthesizer.run, job))
                if len(running) >= config.concurrency:
                    running = _drain(running, journal, bar, tally, FIRST_COMPLETED)
            _drain(running, journal, bar, tally, ALL_COMPLETED)
        except BaseException:
            for future in running:
                future.cancel()
            raise
    return len(pending)


def _pending(journal: Journal, key: str) -> bool:
    record = journal.records.get(key)
    return record is None or record.get("status") == "llm_failure"


@dataclass
class _Tally:
    """Failures to reach the chat model before the first usable reply of this run."""

    limit: int
    failures: int = 0
    answered: bool = False

    def see(self, record: dict[str, Any]) -> None:
        if record["status"] != "llm_failure":
            self.answered = True
        elif not self.answered:
            self.failures += 1
            if self.failures >= self.limit:
                raise BackendError(
                    f"the chat model failed the first {self.failures} requests, none answered: "
                    f"{record['reason']}; re-run once it answers (finished work is kept)"
                )


def _drain(
    running: set[Future[dict[str, Any]]], journal: Journal, bar: Any, tally: _Tally, until: str
) -> set[Future[dict[str, Any]]]:
    done, rest = wait(running, return_when=until)
    for future in done:
        record = future.result()
        journal.append(record)
        bar.update(1)
        tally.see(record)
    return set(rest)


def passage_vectors(
    passages: Sequence[Passage], embedder: Embedder, stored: Mapping[str, np.ndarray], *, progress: bool
) -> np.ndarray:
    """(n, d) float32 document vectors of ``passages``: ``stored`` ones reused, the rest embedded."""
    from tqdm import tqdm

    missing = [i for i, p in enumerate(passages) if p.id not in stored]
    if len(missing) < len(passages):
        log.info(
            "synth: %d of %d passage vectors reused from the KB", len(passages) - len(missing), len(passages)
        )
    out = np.zeros((len(passages), embedder.dimension), dtype=np.float32)
    for i, p in enumerate(passages):
        if p.id in stored:
            out[i] = stored[p.id]
    with tqdm(total=len(missing), desc="embed passages", unit="passage", disable=not progress) as bar:
        for start in range(0, len(missing), EMBED_STEP):
            rows = missing[start : start + EMBED_STEP]
            out[rows] = embedder.embed_documents([passages[i].text for i in rows])
            bar.update(len(rows))
    return out


def synthesize(  # noqa: PLR0913 - keyword-only: the inputs, the chat and the output
    passages: Sequence[Passage],
    *,
    embedder: Embedder,
    complete: Complete,
    personas: Sequence[str],
    out: Path,
    config: SynthConfig,
    run_params: dict[str, Any] | None = None,
    stored: Mapping[str, np.ndarray] | None = None,
) -> SynthReport:
    """Write queries for ``passages`` into the BEIR folder ``out``; resumes a run found there.

    ``complete`` sends chat messages and returns the visible reply (it retries transport errors
    itself and raises :class:`FinesiftError` when it gives up). Nothing is written outside ``out``.
    ``stored``: passage vectors already computed by this embedder (a KB's), by passage id; the others
    are embedded.
    """
    config.check()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / JOURNAL).is_file())):
        raise InvalidRequest(
            f"--out {str(out)!r} exists and holds no synth run ({JOURNAL}); choose a new or empty folder"
        )
    started = time.monotonic()
    selected = select(passages, config)
    vectors = passage_vectors(selected, embedder, stored or {}, progress=config.progress)
    jobs = plan_jobs(selected, vectors, embedder, personas, config.per_chunk)
    params = {
        **(run_params or {}), "passages": fingerprint(passages), "embedder": embedder.model_id,
        "personas": hashlib.sha256("\n".join(personas).encode()).hexdigest()[:16],
        "per_chunk": config.per_chunk, "max_chunks": config.max_chunks, "seed": config.seed,
        "languages": list(config.languages), "attempts": config.attempts,
    }  # fmt: skip
    with Journal(out / JOURNAL, params) as journal:
        resumed = sum(not _pending(journal, job.key) for job in jobs)
        ran = run_jobs(jobs, journal, Synthesizer(complete, config))
        records = [journal.records[job.key] for job in jobs]
    vector_of = {p.id: vectors[i] for i, p in enumerate(selected)}
    report = finalize(
        out,
        passages,
        records,
        embedder=embedder,
        passage_vectors=vector_of,
        policy=OutputPolicy(config.min_cosine, config.seed, config.dev_fraction),
    )
    report.resumed, report.ran = resumed, ran
    report.elapsed_s = round(time.monotonic() - started, 3)
    report.write(out)
    return report
