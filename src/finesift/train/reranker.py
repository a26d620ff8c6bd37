"""Reranker SFT: L = −log p(label | P(q, d)) at the last position, "yes" for positives, "no" for negatives.

P(q, d) is the exact inference prompt, built by :func:`finesift.rerank.prompts.pair_ids` (the same
tokens the reranker scores; only the document is truncated). The inference score is the two-way
softmax over the yes/no logits, so the loss is the cross-entropy of that softmax: only the two rows
``W[no], W[yes]`` of the LM head are applied, to the last position's hidden state. LoRA (peft,
merged into the weights at save) or full fine-tuning; checkpoints every ``save_steps`` hold the
optimizer, scheduler and RNG state, and ``resume`` continues from the latest one. The result is a
plain ``Qwen3ForCausalLM`` directory with ``finesift-lineage.json``.

A plain loop rather than transformers' Trainer: the loss needs the last position of each row and two
head rows, and the resumable state is four tensors' worth; peft supplies the adapters.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from finesift.embedding.embedder import Embedder
from finesift.errors import InvalidRequest, MissingDependency
from finesift.rerank.prompts import DEFAULT_INSTRUCTION, PromptTokens, pair_ids
from finesift.settings import HubSettings
from finesift.train import distributed as dist
from finesift.train.checkpoint import (
    adapter_state,
    check_out_dir,
    latest_checkpoint,
    lineage_record,
    load_state,
    save_checkpoint,
    save_model,
)
from finesift.train.config import Precision, TrainResult, model_dir
from finesift.train.data import TrainData, load_pairs
from finesift.train.distributed import World
from finesift.train.encoder import enable_checkpointing
from finesift.train.progress import Progress, interrupted
from finesift.train.rerank_head import YesNoHead
from finesift.train.rerank_negatives import mine_negatives

log = logging.getLogger(__name__)
#: LoRA targets: every projection of attention and MLP in a Qwen3 block.
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
LOSS_NAME = "-log p(label | inference prompt), yes/no softmax at the last position"


@dataclass(frozen=True)
class RerankerTrainConfig:
    """Every setting of one run (the CLI flags map one to one); ``lr`` None: 1e-4 LoRA, 1e-5 full."""

    model: str
    out: Path
    split: str = "train"
    epochs: int = 1
    batch_size: int = 8
    lr: float | None = None
    negatives: int = 3
    embedding_model: str | None = None
    lora: bool = True
    lora_rank: int = 16
    lora_alpha: int = 32
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    seed: int = 0
    max_steps: int | None = None
    save_steps: int = 0
    max_length: int = 1024
    instruction: str = DEFAULT_INSTRUCTION
    device: str = "auto"
    precision: Precision = "auto"
    gradient_checkpointing: bool = False
    resume: bool = False
    progress: bool = True

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (1e-4 if self.lora else 1e-5)

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise InvalidRequest("--epochs and --batch-size must be at least 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise InvalidRequest(f"--max-steps must be positive, not {self.max_steps}")
        if self.save_steps < 0 or self.negatives < 0 or self.learning_rate <= 0:
            raise InvalidRequest("--save-steps and --negatives must be >= 0 and --lr positive")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise InvalidRequest(f"--precision must be auto, fp32 or bf16, not {self.precision!r}")


#: The reranker's summary has the embedding trainer's fields (one type for both).
RerankerTrainResult = TrainResult


@dataclass(frozen=True)
class Example:
    query: str
    document: str
    label: int  # 1 = yes (relevant), 0 = no


def build_examples(data: TrainData, negatives: list[tuple[str, ...]]) -> list[Example]:
    """One "yes" example per pair and one "no" per negative, in pair order."""
    out = []
    for pair, negs in zip(data.pairs, negatives, strict=True):
        out.append(Example(pair.query, pair.positive, 1))
        out += [Example(pair.query, n, 0) for n in negs]
    return out


def _import() -> tuple[Any, Any]:
    from finesift.runtime import hf

    torch, transformers = hf.import_torch_stack()
    return torch, transformers


def _peft(lm: Any, config: RerankerTrainConfig) -> Any:
    try:
        import peft
    except ImportError as exc:
        raise MissingDependency("peft", "train", "needed for LoRA (or pass --full)") from exc
    lora = peft.LoraConfig(
        r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=0.0, target_modules=list(LORA_TARGETS)
    )
    with warnings.catch_warnings():
        # peft asks the model about gradient checkpointing under a name transformers deprecates.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return peft.get_peft_model(lm, lora)


@dataclass
class _Run:
    """The model, optimizer and schedule of one run, and where it stands."""

    core: Any
    head: YesNoHead
    optimizer: Any
    scheduler: Any
    total_steps: int
    world: World = field(default_factory=World)
    bf16: bool = False
    step: int = 0
    losses: list[float] = field(default_factory=list)
    resumed_from: int = 0
    checkpoints: list[str] = field(default_factory=list)
    step_seconds: list[float] = field(default_factory=list)


def _setup(
    base: Path,
    tokenizer: Any,
    config: RerankerTrainConfig,
    total_steps: int,
    resume_from: Path | None,
    world: World,
) -> _Run:
    torch, transformers = _import()
    device = world.device(config.device)
    device = "cuda" if device in ("auto", "cuda") and torch.cuda.is_available() else device
    device = "cpu" if device == "auto" else device
    source = resume_from if resume_from is not None and not config.lora else base
    lm = transformers.AutoModelForCausalLM.from_pretrained(str(source), dtype=torch.float32).to(device)
    if config.gradient_checkpointing:
        enable_checkpointing(lm)
    torch.manual_seed(config.seed)  # LoRA's initial A matrices
    core = _peft(lm, config) if config.lora else lm
    core.train()
    params = [p for p in core.parameters() if p.requires_grad]
    dist.broadcast_parameters(world, params)
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    warmup = int(total_steps * config.warmup_ratio)
    scheduler = transformers.get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    tokens = PromptTokens.from_tokenizer(tokenizer)
    lm_module = core.get_base_model() if config.lora else core
    bf16 = config.precision == "bf16" or (
        config.precision == "auto" and device.startswith("cuda") and torch.cuda.is_bf16_supported()
    )
    head = YesNoHead(lm_module, tokens, pad, device)
    return _Run(core, head, optimizer, scheduler, total_steps, world, bf16)


def _restore(run: _Run, checkpoint: Path, expected: dict[str, Any]) -> None:
    import torch

    state = load_state(checkpoint, expected)
    if state.get("adapter") is not None:
        run.core.load_state_dict(state["adapter"], strict=False)
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    run.step, run.losses = int(state["step"]), list(state["losses"])
    run.resumed_from = run.step


def _order(n: int, config: RerankerTrainConfig, epoch: int) -> list[int]:
    import torch

    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
    return [int(i) for i in torch.randperm(n, generator=generator)]


def _batches(n: int, config: RerankerTrainConfig) -> list[list[int]]:
    """Every step's example indices, epoch after epoch, in a seeded order."""
    steps = []
    for epoch in range(config.epochs):
        order = _order(n, config, epoch)
        steps += [order[i : i + config.batch_size] for i in range(0, n, config.batch_size)]
    return steps


def train_reranker(
    data: TrainData | str | Path,
    config: RerankerTrainConfig,
    *,
    embedder: Embedder | None = None,
    on_step: Callable[[int, float], None] | None = None,
    hub: HubSettings | None = None,
) -> RerankerTrainResult:
    """Fine-tune ``config.model`` on ``data`` and save a plain checkpoint to ``config.out``.

    Negatives: each pair's own, topped up to ``config.negatives`` from the corpus by ``embedder``
    (default: ``config.embedding_model``; BM25 when neither is given). ``on_step(step, loss)`` runs
    after every optimizer step. Hub ids are resolved through ``hub`` (the CLI's global options).

    Under ``torchrun``/``accelerate launch`` each process trains its slice of every global batch and
    the gradients are summed (:mod:`finesift.train.distributed`); every rank mines the same negatives
    (BM25 or the frozen ``embedder``, seeded: deterministic); rank 0 writes the files.
    """
    config.check()
    with dist.joined(config.device, config.batch_size) as world:
        return _train(data, config, embedder, on_step, hub or HubSettings(), world)


def _train(
    data: TrainData | str | Path,
    config: RerankerTrainConfig,
    embedder: Embedder | None,
    on_step: Callable[[int, float], None] | None,
    hub: HubSettings,
    world: World,
) -> RerankerTrainResult:
    from finesift.runtime import hf

    check_out_dir(config.out, resume=config.resume)
    dist.barrier(world)  # every rank has checked --out before rank 0 writes into it
    data = data if isinstance(data, TrainData) else load_pairs(Path(data), config.split)
    base = model_dir(config.model, hub)
    miner = embedder or _miner(config, hub)
    negatives = mine_negatives(
        data, config.negatives, embedder=miner, seed=config.seed, progress=config.progress
    )
    examples = build_examples(data, negatives)
    tokenizer = hf.load_tokenizer(base)
    rows, labels = _tokenize(tokenizer, examples, config), [e.label for e in examples]
    schedule = _batches(len(examples), config)
    run_id = _run_identity(data, config, len(examples))
    found = latest_checkpoint(config.out) if config.resume and world.main else None
    checkpoint = dist.broadcast_object(world, found)
    steps = min(len(schedule), config.max_steps or len(schedule))
    run = _setup(base, tokenizer, config, steps, checkpoint, world)
    if checkpoint is not None:
        _restore(run, checkpoint, run_id)
    lineage = _lineage(data, config, negatives, len(examples))
    start_step = run.step
    began = time.perf_counter()
    _loop(run, rows, labels, schedule, config, base, lineage, run_id, on_step)
    seconds = time.perf_counter() - began
    lineage["loss"].update(start=run.losses[0] if run.losses else None, end=_tail(run.losses), steps=run.step)
    run.core.eval()
    if world.main:
        save_model(run.core, base, config.out, lineage)
    return TrainResult.of(
        out=config.out, steps=run.step, examples=sum(len(schedule[s]) for s in range(start_step, run.step)),
        losses=run.losses, loss_end=_tail(run.losses), seconds=seconds, resumed_from=run.resumed_from,
        device=run.head.device, precision="bf16" if run.bf16 else "fp32", checkpoints=run.checkpoints,
        step_seconds=run.step_seconds, world_size=world.size,
        per_process_batch=config.batch_size // world.size,
    )  # fmt: skip


def _miner(config: RerankerTrainConfig, hub: HubSettings) -> Embedder | None:
    """The embedder that ranks the corpus for negatives (None: BM25)."""
    if not config.embedding_model:
        return None
    from finesift.embedding.registry import create_backend
    from finesift.settings import EmbeddingSettings

    return Embedder(create_backend(EmbeddingSettings(model=config.embedding_model), hub))


def _loop(  # noqa: PLR0913 - the run's pieces, passed once
    run: _Run,
    rows: list[list[int]],
    labels: list[int],
    schedule: list[list[int]],
    config: RerankerTrainConfig,
    base: Path,
    lineage: dict[str, Any],
    run_id: dict[str, Any],
    on_step: Callable[[int, float], None] | None,
) -> None:
    shown = config.progress and run.world.main
    progress = Progress(run.total_steps, desc="train reranker", initial=run.step, enabled=shown)
    try:
        with progress:
            while run.step < run.total_steps:
                batch = schedule[run.step]
                tick = time.perf_counter()
                _step(run, [rows[i] for i in batch], [labels[i] for i in batch])
                run.step_seconds.append(round(time.perf_counter() - tick, 4))
                progress.update(examples=len(batch), loss=run.losses[-1])
                if config.save_steps and run.step % config.save_steps == 0 and run.world.main:
                    run.checkpoints.append(str(_checkpoint(run, config.out, base, lineage, run_id)))
                if on_step is not None:
                    on_step(run.step, run.losses[-1])
    except KeyboardInterrupt:
        interrupted(config.out, run.step, run.total_steps)
        raise


def _step(run: _Run, rows: list[list[int]], labels: list[int]) -> None:
    """One optimizer step on one global batch; appends its loss to ``run.losses``.

    This rank's slice contributes sum(its cross-entropies) / (global batch); the ranks' gradients and
    losses are summed, which is the mean over the global batch a single process takes.
    """
    import torch
    import torch.nn.functional as F

    start, end = run.world.span(len(rows))
    local = rows[start:end] or rows[:1]  # an empty slice still reaches the weights (zero gradient)
    with torch.autocast(run.head.device.split(":")[0], dtype=torch.bfloat16, enabled=run.bf16):
        logits = run.head.logits(local)[: end - start]
    targets = torch.tensor(labels[start:end], device=logits.device, dtype=torch.long)
    loss = F.cross_entropy(logits, targets, reduction="sum") / len(rows)
    loss.backward()
    dist.sum_gradients(run.world, [p for p in run.core.parameters() if p.requires_grad])
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    run.step += 1
    run.losses.append(round(dist.sum_value(run.world, float(loss.detach())), 6))


def _checkpoint(run: _Run, out: Path, base: Path, lineage: dict[str, Any], run_id: dict[str, Any]) -> Path:
    import torch

    state = {
        "run": run_id, "step": run.step, "losses": run.losses, "rng": torch.get_rng_state(),
        "optimizer": run.optimizer.state_dict(), "scheduler": run.scheduler.state_dict(),
        "adapter": adapter_state(run.core),
    }  # fmt: skip
    snapshot = {**lineage, "loss": {**lineage["loss"], "steps": run.step, "end": _tail(run.losses)}}
    return save_checkpoint(out, run.step, run.core, base, snapshot, state)


def _tokenize(tokenizer: Any, examples: list[Example], config: RerankerTrainConfig) -> list[list[int]]:
    tokens = PromptTokens.from_tokenizer(tokenizer)
    return [
        pair_ids(tokenizer, tokens, instruction=config.instruction, query=e.query, document=e.document,
                 max_length=config.max_length)[0]
        for e in examples
    ]  # fmt: skip


def _tail(losses: list[float], n: int = 5) -> float | None:
    """The mean of the last ``n`` step losses (one step is noisy)."""
    return round(sum(losses[-n:]) / len(losses[-n:]), 6) if losses else None


def _run_identity(data: TrainData, config: RerankerTrainConfig, n: int) -> dict[str, Any]:
    """What must match for ``--resume`` to continue a run."""
    keep = ("epochs", "batch_size", "lora", "lora_rank", "lora_alpha", "seed", "max_steps", "max_length")
    return {"base_model": config.model, "data": data.fingerprint, "examples": n, "lr": config.learning_rate,
            "instruction": config.instruction, **{k: getattr(config, k) for k in keep}}  # fmt: skip


def _lineage(
    data: TrainData, config: RerankerTrainConfig, negatives: list[tuple[str, ...]], n: int
) -> dict[str, Any]:
    skip = ("model", "out", "progress", "device", "resume")
    hyper = {k: v for k, v in asdict(config).items() if k not in skip}
    return lineage_record(
        kind="reranker",
        base_model=config.model,
        data={"source": data.source, "split": data.split, "fingerprint": data.fingerprint,
              "pairs": len(data.pairs), "examples": n,
              "negatives_per_pair": max(map(len, negatives), default=0)},
        loss={"name": LOSS_NAME, "start": None, "end": None, "steps": 0},
        hyper_parameters={**hyper, "lr": config.learning_rate},
    )  # fmt: skip
