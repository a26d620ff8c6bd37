"""Every option, declared once. CLI flags, ``FINESIFT_*`` environment variables and code derive from here.

Nested sections read from ``FINESIFT_<SECTION>__<FIELD>``, e.g. ``FINESIFT_EMBEDDING__MODEL`` or
``FINESIFT_HUB__SOURCE=modelscope``. Library classes never read the environment themselves.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar

from platformdirs import user_data_dir
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from finesift.errors import InvalidRequest

#: The choices of settings that are also CLI flags: commands annotate their flags with these.
HubSource = Literal["huggingface", "modelscope"]
Dtype = Literal["auto", "float32", "bfloat16", "float16"]
OnOverflow = Literal["truncate", "error"]
SearchMode = Literal["dense", "bm25", "hybrid"]
MAX_TOP_K = 1000

DEFAULT_EMBEDDING_MODEL = "Qwen/Qwen3-Embedding-0.6B"
DEFAULT_RERANKER_MODEL = "Qwen/Qwen3-Reranker-0.6B"
#: Model names that mean "no such model" (``finesift serve --reranker-model none``).
NO_MODEL = ("", "none")
#: Tokens per chunk of a new KB when the embedding model reads at least this many (plus its special tokens).
DEFAULT_CHUNK_SIZE = 400


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


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
    attention: Literal["auto", "sdpa", "eager", "flash_attention_2"] = "auto"
    #: int8: dynamic int8 linear layers (CPU only; fidelity measured in docs/performance/engine.md).
    quantize: Literal["none", "int8"] = "none"
    #: auto: finesift's packed Qwen3 forward on CPU (no padding, fp32 residual stream), transformers
    #: on GPU; "packed" or "transformers" force one (int8 and non-Qwen3 models run on transformers).
    forward: Literal["auto", "packed", "transformers"] = "auto"
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


class KBSettings(_Section):
    """Knowledge bases: the store, chunking of new KBs, and ingest limits."""

    store: str = Field(
        default="lancedb", description="store of new KBs: lancedb, a Milvus .db/http URI, or postgresql://"
    )
    store_token: SecretStr | None = Field(
        default=None, description="token of a Milvus server (user:password)"
    )
    chunk_size: int | None = Field(
        default=None,
        ge=32,
        le=8192,
        description="tokens per chunk (new KBs; default: what fits the embedding model's input, at most 400)",
    )
    chunk_overlap: int = Field(default=64, ge=0, le=4096, description="overlap tokens (new KBs)")
    commit_chunks: int = Field(default=256, ge=1, description="chunks per commit")
    max_file_mb: float = Field(default=64.0, gt=0, description="larger files are skipped")
    max_chars: int = Field(
        default=2_000_000, ge=1, description="characters of text per document (more: the document is refused)"
    )
    max_pages: int = Field(default=2_000, ge=1, description="pages per PDF (more: refused before parsing)")
    max_chunks: int = Field(default=20_000, ge=1, description="chunks per document (more: refused)")
    max_tokens: int = Field(default=2_000_000, ge=1, description="tokens per document (more: refused)")
    parse_timeout_s: float = Field(
        default=30.0, gt=0, description="seconds one PDF, DOCX or HTML file may take to parse"
    )
    parse_memory_mb: int = Field(
        default=2048, ge=64, description="address space of a parser process, in MiB (Linux)"
    )
    parse_workers: int = Field(
        default=2, ge=0, le=64, description="parser processes (0: parse in-process, without the limits)"
    )
    optimize_versions: int = Field(default=200, ge=2, description="compact after N versions")
    optimize_keep: float = Field(
        default=600.0, ge=0.001, description="seconds old store versions stay readable after a compaction"
    )
    ann_min_rows: int = Field(
        default=20_000,
        ge=1,
        description="LanceDB: chunks before compaction builds the ANN index (below: exact)",
    )
    ann_index: Literal["IVF_HNSW_SQ", "IVF_PQ"] = Field(
        default="IVF_HNSW_SQ", description="LanceDB ANN index type"
    )
    ann_nprobes: int = Field(
        default=20, ge=1, description="LanceDB ANN: IVF partitions searched (recall vs latency)"
    )
    ann_refine_factor: int = Field(
        default=0, ge=0, description="LanceDB ANN: re-rank k x this candidates exactly (0: off)"
    )
    ann_ef: int = Field(default=64, ge=1, description="LanceDB IVF_HNSW_SQ: HNSW candidate list size")


class SearchSettings(_Section):
    """How a knowledge-base search runs: the one declaration of every search option.

    The defaults of ``finesift search`` (each field is also its flag), of ``/v1/kbs/{kb}/search`` (each is
    also a request field) and of ``ask``; a search overrides them with :meth:`with_overrides`.
    """

    top_k: int = Field(default=5, ge=1, le=MAX_TOP_K, description="hits to return")
    mode: SearchMode = Field(default="hybrid", description="recall by dense vectors, BM25, or both (RRF)")
    candidates: int = Field(
        default=50, ge=1, le=MAX_TOP_K, description="dense top-K and BM25 top-K before fusion"
    )
    rerank: bool = Field(default=True, description="rerank the top candidates")
    rerank_top_n: int = Field(
        default=20, ge=1, le=MAX_TOP_K, description="fused candidates the reranker scores"
    )
    threshold: float | None = Field(
        default=None, allow_inf_nan=False, description="drop hits scoring below this"
    )
    dense_weight: float = Field(
        default=1.0, ge=0, allow_inf_nan=False, description="RRF weight of dense recall"
    )
    bm25_weight: float = Field(
        default=1.0, ge=0, allow_inf_nan=False, description="RRF weight of BM25 recall"
    )
    rrf_k: int = Field(default=60, ge=0, description="RRF constant: score 1 / (rrf_k + rank)")

    @model_validator(mode="after")
    def _some_weight(self) -> Self:
        if self.dense_weight + self.bm25_weight <= 0:
            raise ValueError("dense_weight and bm25_weight (the RRF weights) must not both be 0")
        return self

    def with_overrides(self, **overrides: Any) -> Self:
        """A copy with these fields replaced (``None`` keeps the setting); bad values raise InvalidRequest."""
        return override(self, **overrides)


class LLMSettings(_Section):
    """The chat model that writes cited answers: any OpenAI-compatible ``/v1/chat/completions``."""

    url: str | None = Field(default=None, description="base URL, e.g. http://127.0.0.1:11434/v1 (Ollama)")
    model: str | None = Field(default=None, description="the model name the endpoint serves")
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=120.0, gt=0, description="seconds to connect, or between streamed bytes")
    max_retries: int = Field(
        default=2, ge=0, le=20, description="retries on 429/5xx/timeouts before the answer"
    )
    context_tokens: int = Field(default=8192, ge=256, description="the model's context window, in tokens")
    max_tokens: int = Field(default=1024, ge=16, description="tokens reserved for the answer")
    temperature: float = Field(
        default=0.1, ge=0, le=2, description="sampling temperature of answers (synth: synth.temperature)"
    )


class SynthSettings(_Section):
    """Training queries written by the chat model (``finesift synth``); the endpoint is ``llm``'s."""

    temperature: float = Field(
        default=0.7, ge=0, le=2, description="sampling temperature of the chat model writing queries"
    )


class AnswerSettings(_Section):
    """Cited answers (``finesift ask``, ``/v1/kbs/{kb}/ask``, ``/v1/chat/completions``)."""

    threshold: float = Field(
        default=0.2, ge=0, le=1, description="refuse when the best reranker score is below this"
    )
    top_k: int = Field(default=8, ge=1, le=100, description="passages retrieved for the prompt")
    tokenizer: Literal["auto", "estimate"] = Field(
        default="auto", description="auto: the KB embedder's tokenizer when local, else an estimate"
    )
    max_concurrent: int = Field(
        default=16, ge=1, description="server: answers in progress at once; the next gets 429"
    )


class ServerSettings(_Section):
    """The HTTP server (``finesift serve``): binding, security, limits, batching."""

    host: str = Field(default="127.0.0.1", description="address to bind")
    self_test: bool = Field(
        default=False, description="probe the loaded models against the model cards' code before serving"
    )
    port: int = Field(default=8000, ge=0, le=65535, description="port to listen on")
    api_key: SecretStr | None = Field(
        default=None,
        description="Bearer token required on every route but /health, /ready and the search page "
        "(/ and /static/)",
    )
    allowed_hosts: tuple[str, ...] = Field(
        default=(), description="extra Host names accepted when bound to loopback"
    )
    cors_origins: tuple[str, ...] = Field(
        default=(),
        description="origins allowed by CORS and to send writes from a browser; empty: CORS off, and only "
        "the server's own page may write",
    )
    max_body_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="request body limit (413 beyond)"
    )
    max_inputs: int = Field(default=2048, ge=1, description="texts per embeddings request")
    max_request_tokens: int = Field(default=300_000, ge=1, description="tokens per embeddings request")
    max_documents: int = Field(default=1000, ge=1, description="documents per rerank request")
    batch_tokens: int = Field(
        default=16384, ge=16, description="tokens gathered across requests per model call"
    )
    max_batch_items: int = Field(default=512, ge=1, description="texts or documents per model call")
    queue_size: int = Field(default=64, ge=1, description="requests admitted per model before 429")
    request_timeout: float = Field(default=60.0, gt=0, description="seconds a request may wait and run")
    kb_read_threads: int = Field(
        default=8, ge=1, description="threads for knowledge-base reads (search, info, retrieval for answers)"
    )
    kb_write_threads: int = Field(
        default=4, ge=1, description="threads for knowledge-base writes, drops and background compaction"
    )
    retry_after: int = Field(default=1, ge=1, description="seconds suggested in Retry-After on 429/503")
    shutdown_timeout: float = Field(
        default=30.0, ge=0, description="seconds to finish in-flight work on shutdown"
    )
    index_roots: tuple[Path, ...] = Field(
        default=(), description="folders whose files POST /v1/kbs/{kb}/index may read; empty: none"
    )
    max_upload_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="multipart upload body limit (413 beyond)"
    )
    max_upload_files: int = Field(default=100, ge=1, description="files per upload request")
    max_upload_chars: int = Field(
        default=20_000_000, ge=1, description="characters of text per upload request, all files together"
    )
    upload_wait_timeout: float = Field(
        default=60.0,
        gt=0,
        description="seconds an upload's PDF, DOCX or HTML files may wait for a parser process (503 beyond)",
    )
    kb_write_queue: int = Field(default=16, ge=1, description="writes waiting per knowledge base before 429")
    header_timeout: float = Field(
        default=10.0,
        gt=0,
        description="seconds from a new connection, or a request's first byte, to the end of its headers "
        "(closed beyond)",
    )
    body_timeout: float = Field(
        default=30.0, gt=0, description="seconds a request body may pause between two reads (408 beyond)"
    )
    body_deadline: float = Field(
        default=120.0, gt=0, description="seconds a request body may take in all (408 beyond)"
    )
    keep_alive_timeout: int = Field(
        default=5, ge=1, description="seconds an idle keep-alive connection stays open"
    )
    max_header_bytes: int = Field(
        default=16 * 1024, ge=1024, description="request line and headers (larger: 431, connection closed)"
    )
    max_connections: int = Field(
        default=512,
        ge=1,
        description="open connections before new requests get 503 (/health and /ready still answer)",
    )


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


def default_home() -> Path:
    return Path(user_data_dir("finesift", appauthor=False))


class Settings(BaseSettings):
    """All of finesift's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="FINESIFT_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    home: Path = Field(default_factory=default_home, description="where knowledge bases live")
    #: A factory, so that OLLAMA_MODELS is read when settings are built, not when finesift is imported.
    hub: HubSettings = Field(default_factory=HubSettings)
    embedding: EmbeddingSettings = EmbeddingSettings()
    reranker: RerankSettings = RerankSettings()
    kb: KBSettings = KBSettings()
    search: SearchSettings = SearchSettings()
    server: ServerSettings = ServerSettings()
    eval: EvalSettings = EvalSettings()
    llm: LLMSettings = LLMSettings()
    answer: AnswerSettings = AnswerSettings()
    ray: RaySettings = RaySettings()
    synth: SynthSettings = SynthSettings()
    threads: ThreadSettings = ThreadSettings()


_Model = TypeVar("_Model", bound=BaseModel)


def override(section: _Model, /, **changes: Any) -> _Model:
    """``section`` with ``changes`` applied and validated (``None`` keeps a field); errors are InvalidRequest.

    Unlike ``model_copy(update=...)``, the result is validated: a per-request override cannot slip an
    out-of-range value past the declaration.
    """
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        return section
    return validated(type(section), {**dict(section), **changes})


def validated(model: type[_Model], data: dict[str, Any], *, prefix: str = "") -> _Model:
    """``model`` built from ``data``; a pydantic error becomes one InvalidRequest line naming each field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(f"invalid option {describe(exc, prefix=prefix)}") from exc


def describe(exc: ValidationError, *, prefix: str = "") -> str:
    """The pydantic errors on one line: ``<section.field>: <why> (got <value>); ...``."""
    parts = []
    for error in exc.errors(include_url=False):
        loc = (prefix, *error["loc"]) if prefix else error["loc"]
        where = ".".join(str(part) for part in loc)
        got = error.get("input")
        shown = f" (got {got!r})" if error["type"] != "missing" and not isinstance(got, dict) else ""
        parts.append(f"{where or 'options'}: {error['msg'].removeprefix('Value error, ')}{shown}")
    return "; ".join(parts)
