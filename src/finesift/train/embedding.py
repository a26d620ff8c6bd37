"""``finesift train embedding``: contrastive fine-tuning of an embedder with the improved InfoNCE.

A small loop of our own around well-kept parts: the model and its formatting come from finesift's
embedder, adapters from peft, AdamW from torch, the warm-up schedule from transformers. Why not
sentence-transformers' trainer: its losses see token ids, not the texts the false-negative mask
compares; its checkpoints of a LoRA run are adapters, not ordinary model directories; and exact,
atomic resume after ``kill -9`` is simpler to guarantee when the step, the data order and every state
are ours (see docs/guides/training.md).

The data order is a function of (seed, epoch) alone, so a resumed run replays exactly the batches an
uninterrupted run would have seen.
"""

from __future__ import annotations

import logging
import random
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

from finesift.errors import InvalidRequest, NotFound
from finesift.settings import HubSettings
from finesift.train import checkpoint as ckpt
from finesift.train import distributed as dist
from finesift.train.config import EmbeddingTrainConfig, Precision, TrainResult, batch_schedule, model_dir
from finesift.train.contrastive import BatchLoss
from finesift.train.data import TrainData, load_pairs
from finesift.train.distributed import World
from finesift.train.encoder import TrainableEncoder, open_encoder
from finesift.train.loss import MARGIN
from finesift.train.negatives import negatives_for
from finesift.train.progress import Progress, interrupted

__all__ = ["EmbeddingTrainConfig", "TrainResult", "batch_schedule", "train_embedding"]
log = logging.getLogger(__name__)


def train_embedding(
    data: TrainData | str | Path, config: EmbeddingTrainConfig, *, hub: HubSettings | None = None
) -> TrainResult:
    """Fine-tune ``config.model`` on ``data``; write checkpoints and the final model under ``config.out``.

    A hub id is resolved through ``hub`` (source, cache, offline: the CLI's global options). Started by
    ``torchrun``/``accelerate launch``, every process runs this with the same arguments and trains its
    slice of each global batch (:mod:`finesift.train.distributed`); rank 0 writes the files.
    """
    config.check()
    with dist.joined(config.device, config.batch_size) as world:
        return _train(data, config, hub or HubSettings(), world)


def _train(
    data: TrainData | str | Path, config: EmbeddingTrainConfig, hub: HubSettings, world: World
) -> TrainResult:
    ckpt.check_out_dir(config.out, resume=config.resume)
    dist.barrier(world)  # every rank has checked --out before rank 0 writes into it
    data = (
        data
        if isinstance(data, TrainData)
        else load_pairs(Path(data), config.split, skip_empty=config.skip_empty)
    )
    base = _local_model_dir(config.model, hub)
    _seed_everything(config.seed)
    encoder = open_encoder(
        config.model,
        device=world.device(config.device),
        max_length=config.max_length,
        instruction=config.instruction,
        hub=hub,
    )
    config.out.mkdir(parents=True, exist_ok=True)
    negatives = _negatives(data, encoder, config, world)
    if config.lora:
        _apply_lora(encoder, config)
    if config.gradient_checkpointing:
        encoder.enable_gradient_checkpointing()
    run = _Run(config, data, encoder, negatives, base, world)
    return run.train()


def _negatives(
    data: TrainData, encoder: TrainableEncoder, config: EmbeddingTrainConfig, world: World
) -> list[tuple[str, ...]]:
    """Rank 0 mines (with the start weights) and caches them in --out; the other ranks read that file."""
    if world.main:
        mined = negatives_for(data, encoder, config.hard_negatives, config.out, progress=config.progress)
    dist.barrier(world)
    if not world.main:
        mined = negatives_for(data, encoder, config.hard_negatives, config.out)
    return mined


class _Run:
    """One training run: schedule, state, the step function, checkpoints."""

    def __init__(
        self,
        config: EmbeddingTrainConfig,
        data: TrainData,
        encoder: TrainableEncoder,
        negatives: list[tuple[str, ...]],
        base: Path,
        world: World,
    ) -> None:
        import torch
        from transformers import get_linear_schedule_with_warmup

        self.config, self.data, self.encoder, self.negatives, self.base = (
            config,
            data,
            encoder,
            negatives,
            base,
        )
        self.torch, self.world = torch, world
        queries = encoder.format_queries([p.query for p in data.pairs], None)
        self.batch_loss = BatchLoss(encoder, queries, data, negatives, config, world)
        self.schedule = batch_schedule(len(data.pairs), config)
        self.total = len(self.schedule)
        params = [p for p in encoder.modules.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            params, lr=config.learning_rate(), weight_decay=config.weight_decay
        )
        warmup = int(config.warmup * self.total)
        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, warmup, self.total)
        self.params = params
        dist.broadcast_parameters(world, params)
        self.bf16 = _use_bf16(config.precision, encoder.device)
        self.losses: list[float] = []
        self.start = 0

    def run_settings(self) -> dict[str, Any]:
        """What must match for --resume to continue the same run."""
        settings = asdict(self.config)
        # mini_batch_size changes memory, not the result: a run may resume with another
        for key in ("out", "resume", "progress", "save", "save_steps", "device", "mini_batch_size"):
            settings.pop(key)
        settings["dims"] = list(self.config.dims)
        return {"data": self.data.fingerprint, "settings": settings}

    def train(self) -> TrainResult:
        if self.config.resume:
            self._resume()
        self.encoder.modules.train()
        checkpoints: list[str] = []
        began = time.perf_counter()
        step_seconds: list[float] = []
        progress = Progress(
            self.total, desc="train", initial=self.start, enabled=self.config.progress and self.world.main
        )
        try:
            with progress:
                for step in range(self.start + 1, self.total + 1):
                    tick = time.perf_counter()
                    loss = self._step(self.schedule[step - 1])
                    step_seconds.append(round(time.perf_counter() - tick, 4))
                    self.losses.append(loss)
                    progress.update(examples=_pairs_in(self.schedule[step - 1]), loss=loss)
                    if self.config.save and self.config.save_steps and step % self.config.save_steps == 0:
                        checkpoints.append(str(self._checkpoint(step)))
        except KeyboardInterrupt:
            interrupted(self.config.out, progress.done, self.total)
            raise
        seconds = time.perf_counter() - began
        if self.config.save and self.world.main:
            ckpt.save_model(self.encoder.core, self.base, self.config.out, self._lineage(self.total))
        return TrainResult.of(
            out=self.config.out,
            steps=self.total,
            examples=sum(_pairs_in(batch) for batch in self.schedule[self.start :]),
            losses=self.losses,
            seconds=seconds,
            resumed_from=self.start,
            precision="bf16" if self.bf16 else "fp32",
            device=self.encoder.device,
            checkpoints=checkpoints,
            step_seconds=step_seconds,
            world_size=self.world.size,
            per_process_batch=self.config.batch_size // self.world.size,
        )

    def _step(self, micro_batches: list[list[int]]) -> float:
        torch = self.torch
        total = 0.0
        for batch in micro_batches:
            with torch.autocast(_device_type(self.encoder.device), dtype=torch.bfloat16, enabled=self.bf16):
                total += self.batch_loss.backward(batch, 1 / len(micro_batches))
        dist.sum_gradients(self.world, self.params)
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total

    def _checkpoint(self, step: int) -> Path:
        """``checkpoint-{step}``, written by rank 0 (every rank holds the same weights and state)."""
        torch = self.torch
        if not self.world.main:
            return self.config.out / f"checkpoint-{step}"
        state = {
            "step": step,
            "run": self.run_settings(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "adapter": ckpt.adapter_state(self.encoder.core),
            "rng": {
                "python": random.getstate(),
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            },
            "losses": self.losses,
        }
        return ckpt.save_checkpoint(
            self.config.out, step, self.encoder.core, self.base, self._lineage(step), state
        )

    def _resume(self) -> None:
        torch = self.torch
        found = dist.broadcast_object(
            self.world, ckpt.latest_checkpoint(self.config.out) if self.world.main else None
        )
        if found is None:
            raise NotFound(f"--resume: {self.config.out} holds no complete checkpoint-N to resume from")
        state = ckpt.load_state(found, self.run_settings())
        if state["adapter"] is not None:
            missing = set(state["adapter"]) - set(self.encoder.core.state_dict())
            if missing:
                raise InvalidRequest(
                    f"--resume: {found} holds adapter weights this run lacks: {sorted(missing)[0]}"
                )
            self.encoder.core.load_state_dict(state["adapter"], strict=False)
        else:
            _load_full_weights(self.encoder, found)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        random.setstate(state["rng"]["python"])
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"]["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.losses = list(state["losses"])
        self.start = int(state["step"])
        log.info("resuming from %s (step %d of %d)", found, self.start, self.total)

    def _lineage(self, step: int) -> dict[str, Any]:
        return ckpt.lineage_record(
            kind="embedding",
            base_model=self.config.model,
            data={
                "path": self.data.source,
                "split": self.data.split,
                "fingerprint": self.data.fingerprint,
                "pairs": len(self.data.pairs),
            },
            loss={
                "name": "improved-infonce",
                "temperature": self.config.temperature,
                "false_negative_margin": MARGIN,
                "hard_negatives": self.config.hard_negatives,
                "matryoshka_dims": list(self.config.dims),
            },
            hyperparameters={
                **self.run_settings()["settings"],
                "mini_batch_size": self.config.mini_batch_size,
            },
            world_size=self.world.size,
            per_process_batch=self.config.batch_size // self.world.size,
            step=step,
            steps=self.total,
            loss_start=self.losses[0] if self.losses else None,
            loss_end=self.losses[-1] if self.losses else None,
        )


def _load_full_weights(encoder: TrainableEncoder, checkpoint: Path) -> None:
    from safetensors.torch import load_file

    directory = checkpoint / ckpt.transformer_dir(checkpoint)
    state: dict[str, Any] = {}
    for file in sorted(directory.glob("*.safetensors")):
        state.update(load_file(str(file)))
    missing, unexpected = encoder.core.load_state_dict(state, strict=False)
    if unexpected or [m for m in missing if "position_ids" not in m]:
        raise InvalidRequest(
            f"--resume: the weights in {checkpoint} do not fit the model ({(missing or unexpected)[0]})"
        )


def _apply_lora(encoder: TrainableEncoder, config: EmbeddingTrainConfig) -> None:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:
        from finesift.errors import MissingDependency

        raise MissingDependency("peft", "train", "LoRA training; or pass --full") from exc
    lora = LoraConfig(
        r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=0.0, target_modules="all-linear"
    )
    with warnings.catch_warnings():
        # peft probes transformers' deprecated ``is_gradient_checkpointing`` attribute
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        encoder.adapt(get_peft_model(encoder.core, lora))


def _local_model_dir(model: str, hub: HubSettings) -> Path:
    """The directory the base model's files are copied from."""
    from finesift.embedding.sentence_transformers import MINILM_NAMES, minilm_path

    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if model in MINILM_NAMES:
        return minilm_path()
    return model_dir(model, hub)


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    torch.manual_seed(seed)


def _use_bf16(precision: Precision, device: str) -> bool:
    """``auto``: bf16 autocast on CUDA devices that support it, fp32 on CPU.

    On CPU, bf16 autocast made training slower, not faster, even on a CPU with AVX512-BF16 and AMX
    (measured: docs/performance/training.md); inference keeps its own bf16 policy.
    """
    if precision in ("fp32", "bf16"):
        return precision == "bf16"
    import torch

    return device.startswith("cuda") and bool(torch.cuda.is_bf16_supported())


def _device_type(device: str) -> str:
    return device.split(":")[0]


def _pairs_in(step: list[list[int]]) -> int:
    """Pairs one optimizer step trains on (its micro-batches together)."""
    return sum(len(batch) for batch in step)
