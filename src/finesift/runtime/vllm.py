"""Importing vLLM for the ``vllm`` backends of both models (CUDA only)."""

from __future__ import annotations

from typing import Any

from finesift.errors import MissingDependency


def import_vllm() -> Any:
    """The ``vllm`` module, or :class:`MissingDependency` naming the ``vllm`` extra."""
    try:
        import vllm
    except ImportError as exc:
        raise MissingDependency("vllm", "vllm", "needs a CUDA GPU") from exc
    return vllm
