"""Settings and results of an embedding fine-tuning run, and its data order."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from finesift.errors import InvalidRequest

if TYPE_CHECKING:
    from finesift.settings import HubSettings

Precision = Literal["auto", "fp32", "bf16"]


@dataclass(frozen=True)
class EmbeddingTrainConfig:
    """Every setting of one run (the CLI flags map one to one)."""

    model: str
    out: Path
    split: str = "train"
    skip_empty: bool = False
    epochs: int = 1
    batch_size: int = 16  # the global batch: all processes of a data-parallel run together
    accumulation: int = 1
    mini_batch_size: int | None = None  # GradCache: texts embedded with gradients at a time
    lr: float | None = None  # None: 1e-4 with LoRA, 2e-5 full
    warmup: float = 0.1
    weight_decay: float = 0.01
    temperature: float = 0.05
    hard_negatives: int = 1
    lora: bool = True
    lora_rank: int = 16
    lora_alpha: int = 32
    seed: int = 0
    dims: tuple[int, ...] = ()
    save_steps: int = 0
    max_steps: int | None = None
    max_length: int = 512
    instruction: str | None = None
    device: str = "auto"
    precision: Precision = "auto"
    gradient_checkpointing: bool = False
    resume: bool = False
    progress: bool = True
    save: bool = True  # benchmarks measure the loop without writing the weights

    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (1e-4 if self.lora else 2e-5)

    def check(self) -> None:
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "accumulation": self.accumulation}
        for name, value in positive.items():
            if value < 1:
                raise InvalidRequest(f"--{name.replace('_', '-')} must be at least 1, not {value}")
        if self.batch_size < 2 and self.hard_negatives == 0:
            raise InvalidRequest("--batch-size 1 without hard negatives leaves the loss no negative")
        if self.temperature <= 0 or self.learning_rate() <= 0:
            raise InvalidRequest("--temperature and --lr must be > 0")
        if (
            self.hard_negatives < 0
            or self.save_steps < 0
            or (self.max_steps is not None and self.max_steps < 1)
        ):
            raise InvalidRequest("--hard-negatives and --save-steps must be >= 0, --max-steps >= 1")
        if self.mini_batch_size is not None and self.mini_batch_size < 1:
            raise InvalidRequest(f"--mini-batch-size must be at least 1, not {self.mini_batch_size}")


@dataclass
class TrainResult:
    """The ``--json`` summary of a run: the same fields for the embedding and the reranker trainer.

    ``steps``: optimizer steps the run has reached (a resumed run counts the earlier ones);
    ``examples``: what the run trained on (embedding pairs, or reranker (query, document, label)
    rows; all processes of a data-parallel run together), so ``examples_per_s`` is ``examples /
    seconds`` of the loop; ``resumed_from``: the step the run continued from (0: a fresh run); losses
    are per optimizer step. ``world_size``: processes that trained together (1: no data parallelism);
    ``per_process_batch``: the rows of each global batch one process embeds; ``dev``: nDCG@10 on the
    held-out dev split before and after training (None without one; :mod:`finesift.train.heldout`).
    """

    out: str
    steps: int
    examples: int
    loss_start: float | None
    loss_end: float | None
    seconds: float
    examples_per_s: float
    peak_rss_mb: float
    resumed_from: int = 0
    precision: str = "fp32"
    device: str = "cpu"
    checkpoints: list[str] = field(default_factory=list)
    step_seconds: list[float] = field(default_factory=list)
    peak_gpu_mb: float | None = None
    world_size: int = 1
    per_process_batch: int | None = None
    dev: dict[str, Any] | None = None

    @classmethod
    def of(
        cls,
        *,
        out: Path,
        steps: int,
        examples: int,
        losses: list[float],
        seconds: float,
        loss_end: float | None = None,
        **rest: Any,
    ) -> TrainResult:
        """The summary, with the rates and this process's peak memory filled in."""
        import resource

        device = str(rest.get("device", "cpu"))
        return cls(
            out=str(out), steps=steps, examples=examples,
            loss_start=losses[0] if losses else None,
            loss_end=loss_end if loss_end is not None else (losses[-1] if losses else None),
            seconds=round(seconds, 3), examples_per_s=round(examples / seconds, 3) if seconds > 0 else 0.0,
            peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            peak_gpu_mb=_peak_gpu_mb(device), **rest,
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _peak_gpu_mb(device: str) -> float | None:
    if not device.startswith("cuda"):
        return None
    import torch

    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)


def batch_schedule(n: int, config: EmbeddingTrainConfig) -> list[list[list[int]]]:
    """Optimizer steps, each a list of micro-batches of pair indices; a function of (n, seed, epoch)."""
    micro: list[list[int]] = []
    for epoch in range(config.epochs):
        order = list(range(n))
        random.Random(config.seed * 1_000_003 + epoch).shuffle(order)
        micro.extend(order[i : i + config.batch_size] for i in range(0, n, config.batch_size))
    steps = [micro[i : i + config.accumulation] for i in range(0, len(micro), config.accumulation)]
    return steps[: config.max_steps] if config.max_steps else steps


def model_dir(model: str, hub: HubSettings) -> Path:
    """A local directory holding ``model``: a path as given, or a hub id resolved through ``hub``
    (its source, cache and offline mode: the CLI's ``--hub`` and ``--offline``)."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    from finesift.hub import resolve_model

    return resolve_model(model, hub=hub.source, cache_dir=hub.cache_dir, offline=hub.offline)
