"""The sections of batch work: evaluation, indexing on Ray, and CPU threads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from finesift.settings.base import _Section


class EvalSettings(_Section):
    """The evaluation harness (``finesift eval``)."""

    cache_dir: Annotated[Path | None, Field(description="embedding cache; default <home>/eval-cache")] = None
    cache: Annotated[bool, Field(description="reuse corpus and query embeddings across runs")] = True
    rerank_top: Annotated[int, Field(ge=1, description="dense candidates reranked per query")] = 100
    encode_chunk: Annotated[int, Field(ge=1, description="texts per encode call (progress step)")] = 256


class RaySettings(_Section):
    """``finesift index --engine ray``: indexing as a Ray Data job (parse tasks, embedding actors)."""

    address: str | None = Field(
        default=None,
        description="Ray cluster: ray://HOST:10001 or auto (a running one); default: a local runtime",
    )
    batch_docs: int = Field(default=16, ge=1, description="documents per Ray batch (parse task, embed call)")
    parse_tasks: int | None = Field(
        default=None, ge=1, description="parse-and-chunk tasks at once (default: as many as CPUs allow)"
    )
    embed_actors: int = Field(default=1, ge=1, description="embedding actors, one model replica each")
    gpus_per_actor: float | None = Field(
        default=None, ge=0, description="GPUs per embedding actor (default: 1 when the cluster has GPUs)"
    )
    runtime_env: dict[str, Any] | None = Field(
        default=None, description='Ray runtime_env as JSON, e.g. {"pip": ["finesift[kb]"]}'
    )


class ThreadSettings(_Section):
    """CPU threads of the command line and the server, exported for OpenMP before torch loads.

    A variable already in the environment (``OMP_WAIT_POLICY``, ``OMP_NUM_THREADS``) wins.
    Library users set those variables themselves, before importing torch.
    """

    wait_policy: Literal["passive", "active", "default"] = Field(
        default="passive",
        description="idle OpenMP threads sleep (passive), spin (active), or OpenMP's own (default)",
    )
    count: int | None = Field(
        default=None, ge=1, description="OpenMP threads (OMP_NUM_THREADS; default: torch's, one per core)"
    )
