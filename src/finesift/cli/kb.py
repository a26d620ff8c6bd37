"""``finesift index``, ``finesift search`` and ``finesift kb list|info|delete-doc|drop``."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from finesift.cli.common import settings_of, with_role
from finesift.cli.options import both_models, setting
from finesift.errors import InvalidRequest
from finesift.settings import Dtype, SearchMode, Settings
from finesift.types import Hit, IndexReport

KBOpt = Annotated[str, typer.Option("--kb", help="Knowledge base name (letters, digits, _ . -).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
DeviceOpt = Annotated[str | None, both_models(name="device")]
DtypeOpt = Annotated[Dtype | None, both_models(name="dtype")]
EmbeddingUrlOpt = Annotated[
    str | None,
    setting(
        path="embedding.url",
        help="Embed through OpenAI-compatible endpoints: URL[,URL...] (finesift serve, vLLM, TEI). "
        "Env FINESIFT_EMBEDDING__URL.",
    ),
]

kb_app = typer.Typer(help="List, inspect and delete knowledge bases.", no_args_is_help=True)


def _runtime(ctx: typer.Context, device: str | None, dtype: str | None) -> Settings:
    settings = settings_of(ctx)
    for role in ("embedding", "reranker"):
        settings = with_role(settings, role, device=device, dtype=dtype)
    return settings


def _remote(settings: Settings, urls: str | None, workers: int | None) -> Settings:
    """Route embedding through ``urls`` with ``workers`` parallel requests (none: unchanged)."""
    if workers is not None and not urls:
        raise InvalidRequest("--workers needs --embedding-url URL[,URL...] (the endpoints to embed with)")
    if not urls:
        return settings
    if workers is not None:
        settings = settings.model_copy(
            update={
                "kb": settings.kb.model_copy(
                    update={"commit_chunks": max(settings.kb.commit_chunks, 64 * workers)}
                )
            }
        )
    # Always the pooled client (2 requests per URL unless told): it also counts tokens locally.
    workers = workers or 2 * len([u for u in urls.split(",") if u.strip()])
    return with_role(settings, "embedding", backend="openai", url=urls, workers=workers)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=None))


class _Bar:
    """A tqdm progress bar on stderr (hidden when stderr is not a terminal)."""

    def __init__(self, enabled: bool) -> None:
        self.bar: Any = None
        self.enabled = enabled and sys.stderr.isatty()

    def __call__(self, done: int, total: int, source: str) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="file", file=sys.stderr, dynamic_ncols=True)
        self.bar.set_postfix_str(Path(source).name[-40:], refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


IndexEngine = Literal["local", "ray"]
ENGINE_HELP = (
    "local: index in this process; ray: as a Ray Data job (parse tasks, embedding actors) on --ray-address "
    "(pip install 'finesift[ray]')."
)


def _ray_add(engine: IndexEngine) -> Callable[..., IndexReport]:
    """How ``index`` adds files: :meth:`KnowledgeBase.add`, or the Ray job (its extra checked now)."""
    from finesift.kb.knowledge_base import KnowledgeBase

    if engine == "local":
        return KnowledgeBase.add
    from finesift.kb.ray_ingest import add_with_ray, require_ray

    require_ray()
    return add_with_ray


def index(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (recursive).", show_default=False)],
    kb: KBOpt,
    prune: Annotated[bool, typer.Option(help="Remove documents whose files under PATHS are gone.")] = False,
    embedding_model: Annotated[str | None, typer.Option(help="Embedding model of a new KB.")] = None,
    reranker_model: Annotated[
        str | None, typer.Option(help="Reranker of a new KB ('none': no reranking).")
    ] = None,
    dim: Annotated[int | None, typer.Option(help="Matryoshka dimension of a new KB (default: full).")] = None,
    instruction: Annotated[
        str | None, typer.Option(help="Query instruction of a new KB (name or sentence).")
    ] = None,
    chunk_size: Annotated[int | None, setting(path="kb.chunk_size")] = None,
    chunk_overlap: Annotated[int | None, setting(path="kb.chunk_overlap")] = None,
    store: Annotated[str | None, setting(path="kb.store")] = None,
    workers: Annotated[int | None, setting(path="embedding.workers", note="with --embedding-url")] = None,
    embedding_url: EmbeddingUrlOpt = None,
    engine: Annotated[IndexEngine, typer.Option(help=ENGINE_HELP)] = "local",
    ray_address: Annotated[str | None, setting(path="ray.address", note="with --engine ray")] = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Index files into a knowledge base (created on first use); re-running is incremental."""
    from finesift.kb.indexing import collect_files
    from finesift.kb.knowledge_base import open_or_create
    from finesift.store.registry import normalize_store_uri

    settings = with_role(
        _remote(_runtime(ctx, device, dtype), embedding_url, workers), "ray", address=ray_address
    )
    add = _ray_add(engine)  # a missing extra fails before anything is created, and so does a missing path
    collect_files(paths)
    choices = {"embedding_model": embedding_model, "reranker_model": reranker_model, "dim": dim,
               "instruction": instruction, "chunk_size": chunk_size,
               "chunk_overlap": chunk_overlap,
               "store": normalize_store_uri(store) if store else None}  # fmt: skip
    started = time.perf_counter()
    bar = _Bar(not as_json)
    with open_or_create(kb, settings=settings, choices=choices) as base:
        try:
            report = add(base, paths, prune=prune, progress=bar)
        finally:
            bar.close()
    if as_json:
        _print_json({**report.summary(), "failures": [dataclasses.asdict(f) for f in report.failures]})
        return
    for failure in report.failures:
        typer.echo(f"skipped: {failure.reason}", err=True)
    s = report.summary()
    typer.echo(
        f"{kb}: {s['documents_added']} added, {s['documents_updated']} updated, {s['documents_unchanged']} "
        f"unchanged, {s['documents_failed']} failed, {s['documents_removed']} removed; "
        f"{s['chunks_embedded']} chunks embedded in {time.perf_counter() - started:.1f}s"
    )


def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="What to search for.", show_default=False)],
    kb: KBOpt,
    top_k: Annotated[int | None, setting("--top-k", "-k", path="search.top_k")] = None,
    mode: Annotated[SearchMode | None, setting(path="search.mode")] = None,
    rerank: Annotated[bool | None, setting("--rerank/--no-rerank", path="search.rerank")] = None,
    threshold: Annotated[float | None, setting(path="search.threshold")] = None,
    source: Annotated[str | None, typer.Option(help="Only sources starting with this path prefix.")] = None,
    file_type: Annotated[
        list[str] | None, typer.Option("--type", help="Only these file types (pdf, md...).")
    ] = None,
    candidates: Annotated[int | None, setting(path="search.candidates")] = None,
    rerank_top_n: Annotated[int | None, setting(path="search.rerank_top_n")] = None,
    dense_weight: Annotated[float | None, setting(path="search.dense_weight")] = None,
    bm25_weight: Annotated[float | None, setting(path="search.bm25_weight")] = None,
    rrf_k: Annotated[int | None, setting(path="search.rrf_k")] = None,
    embedding_url: EmbeddingUrlOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search a knowledge base: hybrid recall, then rerank; prints hits with citations."""
    from finesift.kb.knowledge_base import KnowledgeBase
    from finesift.retrieval.request import build_search

    flags = {"top_k": top_k, "mode": mode, "rerank": rerank, "threshold": threshold,
             "candidates": candidates, "rerank_top_n": rerank_top_n, "dense_weight": dense_weight,
             "bm25_weight": bm25_weight, "rrf_k": rrf_k}  # fmt: skip
    settings = with_role(_remote(_runtime(ctx, device, dtype), embedding_url, None), "search", **flags)
    request = build_search(query, settings.search, source=_prefix(source), file_types=file_type or ())
    with KnowledgeBase.open(kb, settings=settings) as base:
        hits = base.run_search(request)
    if as_json:
        _print_json({"hits": [dataclasses.asdict(h) for h in hits]})
        return
    print_hits(hits)


def print_hits(hits: Sequence[Hit]) -> None:
    """Hits as numbered lines with score, citation (source, page, offsets) and an excerpt."""
    if not hits:
        typer.echo("no hits")
    for rank, hit in enumerate(hits, start=1):
        page = f" p.{hit.page}" if hit.page is not None else ""
        typer.echo(f"{rank}. {hit.score:.4f}  {hit.source}{page} [{hit.start}:{hit.end}]  doc {hit.doc_id}")
        excerpt = " ".join(hit.text.split())
        typer.echo(f"   {excerpt[:240]}{'…' if len(excerpt) > 240 else ''}")


def _prefix(source: str | None) -> str | None:
    """Relative prefixes are taken from the current directory, like the indexed sources."""
    if source is None or not source.strip():
        return None
    if "://" in source:
        return source
    from finesift.kb.indexing import source_name

    path = Path(source).expanduser().absolute()
    return source_name(path) + ("/" if source.endswith("/") else "")


@kb_app.command("list")
def list_kbs(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the knowledge bases under the home directory."""
    from finesift.kb.knowledge_base import KnowledgeBase

    settings = settings_of(ctx)
    names = KnowledgeBase.names(settings=settings)
    if as_json:
        _print_json({"knowledge_bases": names, "home": str(settings.home)})
        return
    if not names:
        typer.echo(f"no knowledge bases in {settings.home}")
    for name in names:
        typer.echo(name)


@kb_app.command("info")
def info(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Knowledge base name.", show_default=False)],
    as_json: JsonOpt = False,
) -> None:
    """Show a knowledge base's models, settings, counts and documents."""
    from finesift.kb.knowledge_base import KnowledgeBase

    with KnowledgeBase.open(name, settings=settings_of(ctx)) as base:
        data = base.info()
        docs = base.documents()
    if as_json:
        _print_json({**data, "document_list": [dataclasses.asdict(d) for d in docs]})
        return
    keys = ("name", "path", "store", "embedding_model", "dim", "reranker_model", "instruction",
            "chunk_size", "chunk_overlap", "created_at", "documents", "chunks")  # fmt: skip
    for key in keys:
        typer.echo(f"{key}: {data[key]}")
    for doc in docs:
        typer.echo(f"  {doc.doc_id}  {doc.chunks:>4} chunks  {doc.source}")


@kb_app.command("delete-doc")
def delete_doc(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Knowledge base name.", show_default=False)],
    doc_ids: Annotated[list[str], typer.Argument(help="Document ids (or source paths).", show_default=False)],
    as_json: JsonOpt = False,
) -> None:
    """Delete documents from a knowledge base."""
    from finesift.kb.knowledge_base import KnowledgeBase

    with KnowledgeBase.open(name, settings=settings_of(ctx)) as base:
        deleted = base.delete(doc_ids)
    if as_json:
        _print_json({"deleted": deleted})
    else:
        typer.echo(f"{name}: deleted {deleted} document(s)")


@kb_app.command("drop")
def drop(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Knowledge base name.", show_default=False)],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a knowledge base and all its files."""
    from finesift.kb.knowledge_base import KnowledgeBase

    settings = settings_of(ctx)
    if not KnowledgeBase.exists(name, settings=settings):
        KnowledgeBase.open(name, settings=settings)  # raises the one-line NotFound
    if not yes:
        typer.confirm(f"Delete knowledge base {name!r} and all its files?", abort=True)
    KnowledgeBase.drop(name, settings=settings)
    typer.echo(f"dropped {name}")


@kb_app.command("migrate")
def migrate(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Knowledge base name.", show_default=False)],
    to: Annotated[
        str, typer.Option("--to", help="Target store: lancedb, ./kb.db, http://host:19530, postgresql://...")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Copy a knowledge base into another store (no re-embedding) and switch it there."""
    from finesift.kb.migrate import migrate as run

    report = run(name, to=to, settings=settings_of(ctx))
    if as_json:
        _print_json(dataclasses.asdict(report))
        return
    typer.echo(
        f"{name}: {report.documents} documents, {report.chunks} chunks copied from {report.source} "
        f"to {report.target} in {report.seconds:.1f}s"
    )


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Knowledge base")(index)
    app.command(rich_help_panel="Knowledge base")(search)
    app.add_typer(kb_app, name="kb", rich_help_panel="Knowledge base")
