"""The HTTP server's section (``finesift serve``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from finesift.settings.base import _Section


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
