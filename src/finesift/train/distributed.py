"""Data-parallel training over ``torch.distributed``: this process's place, its slice, the collectives.

``torchrun --nproc-per-node N`` and ``accelerate launch`` start N copies of the same command and tell
each its place through ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`join` reads them (the launcher's contract, read in this one place) and joins the process group:
gloo on CPU, nccl on CUDA (one GPU per process, ``cuda:LOCAL_RANK``). Without them it is one process
and every collective below is the identity.

How N processes equal one: ``--batch-size`` is the global batch, and rank r takes the r-th contiguous
slice of each global batch (:meth:`World.span`). Each rank embeds its slice; :func:`gather` joins the
slices of all ranks in rank order, so every rank holds the whole global batch and computes the whole
loss, exactly the single-process value. Gradients reach only this rank's slice (the others' rows are
constants here), so the gradient of the loss is the *sum* over ranks of what each computes;
:func:`sum_gradients` all-reduces with SUM before clipping and the optimizer step, which then see
the single-process gradient on every rank, and the ranks' weights stay identical.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

from finesift.errors import InvalidRequest

#: Gradients are summed in flat buffers of at most this many elements (one all-reduce each).
BUCKET = 1 << 24


@dataclass(frozen=True)
class World:
    """This process's rank among ``size`` processes; ``size`` 1: a plain single-process run."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    #: True when :func:`join` created the process group (so :func:`leave` destroys it).
    owns_group: bool = False

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes checkpoints, the lineage, logs and progress."""
        return self.rank == 0

    def sizes(self, n: int) -> list[int]:
        """Rows per rank of a batch of ``n``: equal parts; a short last batch: the first ranks one more."""
        return [n // self.size + (1 if r < n % self.size else 0) for r in range(self.size)]

    def span(self, n: int) -> tuple[int, int]:
        """[start, end) of this rank's contiguous slice of a batch of ``n``."""
        sizes = self.sizes(n)
        start = sum(sizes[: self.rank])
        return start, start + sizes[self.rank]

    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.size:
            raise InvalidRequest(
                f"--batch-size {batch_size} (the global batch) does not split over {self.size} processes; "
                f"pass a multiple of {self.size}"
            )

    def device(self, requested: str) -> str:
        """``cuda:LOCAL_RANK`` for an ``auto``/``cuda`` run of several processes on GPUs, else as asked."""
        if self.size > 1 and requested in ("auto", "cuda") and _cuda():
            return f"cuda:{self.local_rank}"
        return requested


def launched_rank() -> int:
    """The rank a launcher gave this process (0 when none did): the CLI prints on rank 0 only."""
    return int(os.environ.get("RANK", "0") or 0)


def join(requested_device: str) -> World:
    """This process's :class:`World`, joining the process group a launcher set up (env:// init)."""
    size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if size <= 1:
        return World()
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    owns = not dist.is_initialized()
    if owns:
        gpu = requested_device != "cpu" and _cuda()
        if gpu:
            import torch

            torch.cuda.set_device(local)
        dist.init_process_group(backend="nccl" if gpu else "gloo", init_method="env://")
    return World(rank=dist.get_rank(), size=dist.get_world_size(), local_rank=local, owns_group=owns)


@contextmanager
def joined(requested_device: str, batch_size: int) -> Iterator[World]:
    """This process's :class:`World` for one run: the global batch checked, the group left afterwards
    (at once, without the closing barrier, when the run failed)."""
    world = join(requested_device)
    try:
        world.check_batch(batch_size)
        yield world
    except BaseException:
        leave(world, failed=True)
        raise
    leave(world)


def leave(world: World, *, failed: bool = False) -> None:
    """Wait for every rank (unless this one failed: the others may be inside another collective), then
    destroy the process group :func:`join` created."""
    if world.size > 1:
        import torch.distributed as dist

        if not failed:
            dist.barrier()
        if world.owns_group:
            dist.destroy_process_group()


def barrier(world: World) -> None:
    if world.size > 1:
        import torch.distributed as dist

        dist.barrier()


def broadcast_object(world: World, value: Any) -> Any:
    """Rank 0's ``value`` on every rank (a picklable object: a path, a flag)."""
    if world.size == 1:
        return value
    import torch.distributed as dist

    box = [value if world.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(world: World, local: Any, sizes: list[int]) -> Any:
    """(sum(sizes), ...): every rank's rows in rank order; gradients flow to this rank's ``local`` rows.

    ``sizes`` are the ranks' row counts (known to all from the global batch). The backward pass hands
    back this rank's part of the gradient unchanged: each rank computes the whole loss, and
    :func:`sum_gradients` adds the ranks' parameter gradients afterwards.
    """
    if world.size == 1:
        return local
    return _gather_function().apply(local, sizes, world.rank)


@cache
def _gather_function() -> Any:
    import torch
    import torch.distributed as dist

    class AllGather(torch.autograd.Function):
        """all_gather of unequal row counts (padded to the largest, then trimmed)."""

        @staticmethod
        def forward(ctx: Any, local: Any, sizes: list[int], rank: int) -> Any:
            ctx.span = (sum(sizes[:rank]), sum(sizes[: rank + 1]))
            padded = local.new_zeros((max(sizes), *local.shape[1:]))
            padded[: local.shape[0]] = local.detach()
            parts = [torch.empty_like(padded) for _ in sizes]
            dist.all_gather(parts, padded)
            return torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)])

        @staticmethod
        def backward(ctx: Any, grad: Any) -> tuple[Any, None, None]:
            start, end = ctx.span
            return grad[start:end], None, None

    return AllGather


def sum_gradients(world: World, params: list[Any]) -> None:
    """Every rank's parameter gradients replaced by their sum over ranks (None counts as zeros)."""
    if world.size == 1:
        return
    import torch
    import torch.distributed as dist

    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    for bucket in _buckets(params):
        flat = torch.cat([p.grad.reshape(-1) for p in bucket])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        at = 0
        for p in bucket:
            p.grad.copy_(flat[at : at + p.numel()].view_as(p.grad))
            at += p.numel()


def _buckets(params: list[Any]) -> list[list[Any]]:
    """Consecutive parameters of one dtype and device, at most :data:`BUCKET` elements a bucket."""
    out: list[list[Any]] = []
    size = 0
    for p in params:
        last = out[-1][-1] if out else None
        fits = last is not None and last.dtype == p.dtype and last.device == p.device
        if not fits or size + p.numel() > BUCKET:
            out.append([])
            size = 0
        out[-1].append(p)
        size += p.numel()
    return out


def sum_value(world: World, value: float) -> float:
    """``value`` summed over ranks (a loss each rank computed on its slice)."""
    if world.size == 1:
        return value
    import torch
    import torch.distributed as dist

    box = torch.tensor([value], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        box = box.cuda()
    dist.all_reduce(box, op=dist.ReduceOp.SUM)
    return float(box.item())


def broadcast_parameters(world: World, params: list[Any]) -> None:
    """Rank 0's weights on every rank (a guard: seeded starts are equal already)."""
    if world.size == 1:
        return
    import torch.distributed as dist

    for p in params:
        dist.broadcast(p.data, src=0)


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())
