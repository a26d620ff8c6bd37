"""The model sections: where models come from (``hub``), and the embedding and reranking models.

The two model sections stay in the module of :class:`ModelSettings`: the settings page takes the ``#:``
comments of inherited fields from base classes in the same module (scripts/gen_settings_docs.py).
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, SecretStr

from finesift.settings.base import (
    DEFAULT_EMBEDDING_MODEL,
    DEFAULT_RERANKER_MODEL,
    NO_MODEL,
    AttentionName,
    Dtype,
    ForwardName,
    FuseName,
    HubSource,
    OnOverflow,
    QuantizeName,
    _Section,
)


class HubSettings(_Section):
    """Where hub ids are downloaded from."""

    source: HubSource = Field(default="huggingface", description="where hub ids are downloaded from")
    cache_dir: str | None = None
    offline: bool = Field(default=False, description="never download; use cached or local models only")
    ollama_models: str | None = Field(
        default_factory=lambda: os.environ.get("OLLAMA_MODELS") or None,
        description="Ollama's model store for ollama:NAME:TAG (default $OLLAMA_MODELS or ~/.ollama/models)",
    )


class ModelSettings(_Section):
    """What every model role shares: which model, which backend, where it runs."""

    model: str = Field(description="hub id, local directory, or fake")
    served_name: str | None = Field(
        default=None,
        description="server: the name clients send as model and see in /v1/models "
        "(default: the hub id, or the model directory's name)",
    )
    backend: str = Field(default="auto", description="backend name (auto: chosen from the model)")
    revision: str | None = None
    device: str = Field(default="auto", description="where the model runs: auto, cpu, cuda, cuda:N or mps")
    dtype: Dtype = Field(
        default="auto", description="weights' floating-point type (auto: bfloat16 on CUDA and bf16 CPUs)"
    )
    max_length: int = Field(8192, ge=16, description="tokens per text (or pair) before truncation")
    token_budget: int | None = Field(
        None, ge=16, description="tokens per forward pass (padded tokens on the transformers forward)"
    )
    #: auto: flash-attention 2 with padding-free packing on CUDA when flash-attn is installed, else SDPA.
    attention: AttentionName = "auto"
    #: int8: dynamic int8 linear layers (CPU only; fidelity measured in docs/performance/engine.md).
    quantize: QuantizeName = "none"
    #: auto: finesift's packed Qwen3 forward on CPU (no padding, fp32 residual stream), transformers
    #: on GPU; "packed" or "transformers" force one (int8 and non-Qwen3 models run on transformers).
    forward: ForwardName = "auto"
    #: packed CPU forward: compile norms, RoPE and SwiGLU into fused kernels with torch.compile (needs a
    #: C++ compiler). auto: at the first forward of 4096+ tokens (serve: at start); on: at load; off: never.
    fuse: FuseName = "auto"
    instruction: str | None = None
    url: str | None = Field(None, description="endpoint of a remote backend")
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=60.0, gt=0, description="remote backends: seconds per HTTP request")
    max_retries: int = Field(default=4, ge=0, le=20, description="remote: retries on 429/5xx/timeouts")
    batch_size: int | None = Field(default=None, ge=1, description="remote backends: inputs per request")
    n_gpu_layers: int = Field(default=0, ge=-1, description="llamacpp: layers offloaded to the GPU (-1: all)")
    gguf_type: str | None = Field(
        None,
        description="llamacpp: the quantization to take from a GGUF hub repository, e.g. q8_0 "
        "(or write the model as owner/name-GGUF:q8_0)",
    )
    keep_alive: str | None = Field(
        default=None, description="ollama: how long the server keeps the model loaded (5m, 1h, -1, 0)"
    )

    @property
    def enabled(self) -> bool:
        """False when ``model`` is ``none``: the server serves no model of this role."""
        return self.model.strip().lower() not in NO_MODEL


class EmbeddingSettings(ModelSettings):
    """The embedding model."""

    model: str = Field(
        default=DEFAULT_EMBEDDING_MODEL, description="hub id, local directory, fake, or none (no embedder)"
    )
    on_overflow: OnOverflow = Field(
        default="truncate", description="a text longer than max_length: truncate it, or refuse it"
    )
    workers: int | None = Field(
        default=None, ge=1, le=256, description="openai: parallel requests over the URLs (default 2 per URL)"
    )
    query_format: Literal["auto", "qwen3", "none"] = Field(
        default="auto", description="remote: Qwen3 query instruction client-side (auto: Qwen3 names)"
    )


class RerankSettings(ModelSettings):
    """The reranking model."""

    model: str = Field(
        default=DEFAULT_RERANKER_MODEL, description="hub id, local directory, fake, or none (no reranker)"
    )
    #: Compute the prompt prefix (system, instruction, query) shared by a query's documents once.
    prefix_cache: bool = True
    max_concurrent: int = Field(
        default=4, ge=1, le=64, description="ollama: generate requests in flight at once (one per document)"
    )
