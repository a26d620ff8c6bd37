"""``finesift mteb``: mteb tasks through any finesift model, resumable per task.

Embedder runs: each task through :class:`MTEBEncoder`. Reranker runs (the model card's protocol):
the embedder's top ``rerank_top`` per query (mteb's own predictions file, cached under
``first_stage_dir`` keyed by the embedder's fingerprint, reusable across rerankers), then
:class:`MTEBReranker` on them through mteb's ``convert_to_reranking``: metrics are mteb's own.

mteb writes its result files under ``output/results/<model>/<revision>/``; finesift adds
``output/finesift/<model>/<task>.json`` (the instruction each task used and where it came from, the
first stage) and ``summary.json``. A task whose mteb result file exists is not run again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from finesift.errors import BackendError, FinesiftError, NotFound
from finesift.eval.mteb import MTEBEncoder, MTEBReranker, import_mteb
from finesift.eval.task_instructions import TABLE_SOURCE

log = logging.getLogger(__name__)

Status = Literal["ran", "cached"]


@dataclass(frozen=True)
class TaskOutcome:
    """One task's main score (mteb's ``main_score``, mean over subsets of the first eval split)."""

    task: str
    task_type: str
    main_score: float | None
    status: Status
    seconds: float
    instruction: dict[str, Any]
    result_file: str
    first_stage: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "type": self.task_type,
            "main_score": None if self.main_score is None else round(self.main_score, 6),
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "instruction": self.instruction,
            "result_file": self.result_file,
            "first_stage": self.first_stage,
        }


@dataclass
class MTEBRun:
    """Where results go and how the run behaves; ``first_stage_dir`` holds the reusable top-k files."""

    output: Path
    first_stage_dir: Path
    rerank_top: int = 100
    batch_size: int = 32
    progress: bool = False
    report: Callable[[str], None] = field(default=lambda _msg: None)

    def __post_init__(self) -> None:
        self.output = self.output.resolve()

    def run_embedder(self, model: MTEBEncoder, tasks: Sequence[Any]) -> list[TaskOutcome]:
        return [self._embedder_task(model, task, i, len(tasks)) for i, task in enumerate(tasks, 1)]

    def run_reranker(
        self, model: MTEBReranker, first_stage: MTEBEncoder, tasks: Sequence[Any]
    ) -> list[TaskOutcome]:
        return [
            self._reranker_task(model, first_stage, task, i, len(tasks)) for i, task in enumerate(tasks, 1)
        ]

    def _embedder_task(self, model: MTEBEncoder, task: Any, index: int, total: int) -> TaskOutcome:
        meta, name = model.mteb_model_meta, task.metadata.name
        path = self._result_path(meta, name)
        status: Status = "cached" if path.is_file() else "ran"
        self.report(f"[{index}/{total}] {name}: {'already done' if status == 'cached' else 'running'}")
        began = time.perf_counter()
        result = self._evaluate(model, task, cache=self._cache())
        outcome = self._outcome(task, result, status, began, model.instruction_for(task.metadata), path)
        self._record(outcome)
        return outcome

    def _reranker_task(
        self, model: MTEBReranker, first: MTEBEncoder, task: Any, index: int, total: int
    ) -> TaskOutcome:
        name = task.metadata.name
        if "Retrieval" not in str(task.metadata.type) and "Reranking" not in str(task.metadata.type):
            raise NotFound(f"the reranking protocol runs retrieval tasks; {name} is {task.metadata.type}")
        folder, key = self.first_stage_folder(first)
        model.experiment = {"first_stage": key}
        meta = model.mteb_model_meta
        path = self._result_path(meta, name)
        status: Status = "cached" if path.is_file() else "ran"
        self.report(f"[{index}/{total}] {name}: {'already done' if status == 'cached' else 'running'}")
        began = time.perf_counter()
        stage: dict[str, Any] = {"model": first.name, "key": key, "top_k": self.rerank_top}
        if status == "ran":
            stage["cached"] = self._first_stage(first, task, folder)
            task.convert_to_reranking(folder, top_k=self.rerank_top)
        result = self._evaluate(model, task, cache=self._cache())
        outcome = self._outcome(task, result, status, began, model.instruction_for(task.metadata), path)
        outcome = TaskOutcome(**{**outcome.__dict__, "first_stage": stage})
        self._record(outcome)
        return outcome

    def first_stage_folder(self, first: MTEBEncoder) -> tuple[Path, str]:
        """The folder of ``first``'s prediction files: keyed by its fingerprint, dim and instruction table."""
        blob = json.dumps(
            {
                "fingerprint": first.embedder.fingerprint(),
                "dim": first.dim,
                "table": TABLE_SOURCE["sha256"],
                "overrides": first.instructions,
            },
            sort_keys=True,
            default=str,
        )
        key = hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
        return self.first_stage_dir / key, key

    def _first_stage(self, first: MTEBEncoder, task: Any, folder: Path) -> bool:
        """Write (or reuse) the first stage's predictions for every eval split of ``task``; True if reused."""
        path = folder / task.prediction_file_name
        if _covers(path, task):
            self.report(f"  first stage: reusing {path}")
            return True
        self.report(f"  first stage: {first.name} top {self.rerank_top}")
        self._evaluate(first, task, cache=None, prediction_folder=folder)
        return False

    def _evaluate(self, model: Any, task: Any, *, cache: Any, prediction_folder: Path | None = None) -> Any:
        mteb = import_mteb()
        try:
            result = mteb.evaluate(
                model,
                task,
                cache=cache,
                overwrite_strategy="only-missing" if cache is not None else "always",
                prediction_folder=prediction_folder,
                show_progress_bar=self.progress,
                encode_kwargs={"batch_size": self.batch_size, "show_progress_bar": self.progress},
            )
        except FinesiftError:
            raise
        except Exception as exc:
            if _is_offline(exc):
                raise NotFound(_offline_message(task.metadata.name, exc)) from exc
            raise BackendError(f"mteb failed on {task.metadata.name}: {type(exc).__name__}: {exc}") from exc
        return result.task_results[0]

    def _cache(self) -> Any:
        return import_mteb().ResultCache(self.output)

    def _result_path(self, meta: Any, task_name: str) -> Path:
        return Path(self._cache().get_task_result_path(task_name, meta))

    def _outcome(
        self, task: Any, result: Any, status: Status, began: float, instruction: Any, path: Path
    ) -> TaskOutcome:
        return TaskOutcome(
            task=task.metadata.name,
            task_type=str(task.metadata.type),
            main_score=_main_score(result, task.metadata.eval_splits),
            status=status,
            seconds=time.perf_counter() - began,
            instruction=instruction.to_json(),
            result_file=str(path),
        )

    def record_path(self, result_file: str | Path) -> Path:
        """finesift's record of a task: mteb's result path with ``finesift/`` in place of ``results/``."""
        return self.output / "finesift" / Path(result_file).relative_to(self.output / "results")

    def _record(self, outcome: TaskOutcome) -> None:
        path = self.record_path(outcome.result_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {**outcome.to_json(), "instruction_table": TABLE_SOURCE}
        path.write_text(json.dumps(record, indent=1, ensure_ascii=False), "utf-8")


def _main_score(result: Any, splits: Sequence[str]) -> float | None:
    for split in splits:
        rows = result.scores.get(split) or []
        values = [float(r["main_score"]) for r in rows if r.get("main_score") is not None]
        if values:
            return sum(values) / len(values)
    return None


def _covers(path: Path, task: Any) -> bool:
    """Whether the predictions file at ``path`` holds every eval split of every subset of ``task``."""
    if not path.is_file():
        return False
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    subsets = list(task.hf_subsets) if getattr(task, "hf_subsets", None) else ["default"]
    return all(split in saved.get(sub, {}) for sub in subsets for split in task.metadata.eval_splits)


def _is_offline(exc: BaseException) -> bool:
    chain = [e for e in (exc, exc.__cause__, exc.__context__) if e is not None]
    offline = {"OfflineModeIsEnabled", "LocalEntryNotFoundError", "ConnectError", "DatasetNotFoundError"}
    if any(isinstance(e, ConnectionError) or type(e).__name__ in offline for e in chain):
        return True
    return any("offline" in str(e).lower() for e in chain)


def _offline_message(task: str, exc: BaseException) -> str:
    return (
        f"the data of {task} could not be loaded ({type(exc).__name__}: {exc}). Without network, "
        f"download it once where there is one "
        f"(`python -c \"import mteb; mteb.get_task('{task}').load_data()\"`) "
        f"and point HF_HOME (or HF_DATASETS_CACHE) at that cache, with HF_DATASETS_OFFLINE=1; "
        f"or pass a local BEIR folder instead of the task name"
    )
