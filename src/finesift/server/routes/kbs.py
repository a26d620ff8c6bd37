"""Knowledge bases: create, list, info, drop; upload or index documents; delete them; search."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from finesift.errors import InvalidRequest, TooLarge
from finesift.kb.indexing import doc_id_for, source_name
from finesift.kb.knowledge_base import KnowledgeBase
from finesift.kb.spec import KBSpec
from finesift.retrieval.options import SearchOptions
from finesift.retrieval.request import build_search
from finesift.server.kb_schemas import (
    CreateKB,
    Deleted,
    DocumentList,
    Dropped,
    IndexPaths,
    IndexResult,
    KBInfo,
    KBList,
    SearchRequest,
    SearchResponse,
)
from finesift.server.kb_service import KBRegistry
from finesift.server.paths import collect, confine, resolve_roots
from finesift.server.routes.common import State, _error
from finesift.server.uploads import read_uploads
from finesift.types import IndexReport

router = APIRouter(tags=["knowledge bases"])


def get_kbs(request: Request) -> KBRegistry:
    registry: KBRegistry = request.app.state.finesift_kbs
    return registry


KBs = Annotated[KBRegistry, Depends(get_kbs)]
KBName = Annotated[str, PathParam(description="Knowledge base name.", max_length=64)]
DocId = Annotated[str, PathParam(description="Document id (16 hex digits).", pattern=r"^[0-9a-f]{16}$")]

COMMON: dict[int | str, dict[str, Any]] = {
    400: _error("Malformed JSON, or a Host header that is not allowed"),
    404: _error("Unknown knowledge base or document"),
    413: _error("Body or upload too large, or nothing indexed because a document is over a cap (kb.max_*)"),
    422: _error("Invalid request: bad name, empty query, wrong types, out-of-range options"),
    429: _error("Too many reads in flight, or too many writes waiting for this knowledge base"),
    503: _error("Store unavailable, deadline exceeded (the open included), or server draining"),
}
WRITE: dict[int | str, dict[str, Any]] = {
    **COMMON,
    409: _error("Fingerprint mismatch with the server's model, name taken, or another writer active"),
    503: _error("Models loading or server draining"),
}
READ: dict[int | str, dict[str, Any]] = {
    **COMMON,
    409: _error("The knowledge base was built with another embedding model"),
    503: _error("Models loading, server draining, or deadline exceeded"),
}


def _index_result(report: IndexReport) -> Any:
    """The answer of a write, built from what the write itself knows (no second read that could fail
    or be refused after the commit).

    A write that changed nothing and whose first failure is a cap (``kb.max_chunks``, ...) is that
    413, as when an upload's only file is over a cap; otherwise failures are listed in a 200.
    """
    first = report.failures[0] if report.failures else None
    if first is not None and first.too_large and not report.stored and not report.documents_removed:
        raise TooLarge(f"nothing to index: {first.reason}")
    documents = [{"doc_id": doc_id_for(s), "source": s} for s in sorted(set(report.stored))]
    failures = [dataclasses.asdict(f) for f in report.failures]
    return {**report.summary(), "failures": failures, "documents": documents}


@router.get("/v1/kbs", response_model=KBList, responses=COMMON)
async def list_kbs(kbs: KBs) -> Any:
    """The knowledge bases under the server's home, sorted by name."""
    return {"object": "list", "data": [{"name": name} for name in kbs.names()]}


@router.post("/v1/kbs", status_code=201, response_model=KBInfo, responses=WRITE)
async def create_kb(body: CreateKB, kbs: KBs, state: State) -> Any:
    """Create an empty knowledge base with the server's models; 409 if the name is taken."""
    service = state.require_embeddings()
    settings = kbs.settings
    spec = KBSpec.from_settings(
        settings,
        embedding_model=service.embedder.model_id,
        reranker_model=settings.reranker.model if body.rerank else "none",
        dim=body.dim,
        chunk_size=body.chunk_size,
        chunk_overlap=body.chunk_overlap,
    )

    def create() -> dict[str, Any]:
        with KnowledgeBase.create(body.name, settings=settings, spec=spec, embedder=service.embedder) as kb:
            return _info(kb)

    return await kbs.write(body.name, create)


def _info(kb: KnowledgeBase) -> dict[str, Any]:
    data = kb.info()
    data.pop("path", None)  # a server path; clients have no use for it
    data["document_list"] = [dataclasses.asdict(d) for d in kb.documents()]
    return data


@router.get("/v1/kbs/{kb}", response_model=KBInfo, responses=COMMON)
async def kb_info(kb: KBName, kbs: KBs) -> Any:
    """Models, dimension, chunking, counts, fingerprint and documents of a knowledge base."""
    return await kbs.read_kb(kb, _info, models=False)


@router.delete("/v1/kbs/{kb}", response_model=Dropped, responses=WRITE)
async def drop_kb(kb: KBName, kbs: KBs) -> Any:
    """Delete a knowledge base and all its files."""

    def drop() -> None:
        with kbs.dropping(kb):  # reads in flight finish first; new ones get 404
            KnowledgeBase.drop(kb, settings=kbs.settings)

    await kbs.write(kb, drop)
    return {"name": kb, "dropped": True}


@router.get("/v1/kbs/{kb}/documents", response_model=DocumentList, responses=COMMON)
async def list_documents(kb: KBName, kbs: KBs) -> Any:
    """Every document of a knowledge base, sorted by source."""

    def documents(base: KnowledgeBase) -> list[dict[str, Any]]:
        return [dataclasses.asdict(d) for d in base.documents()]

    return {"object": "list", "data": await kbs.read_kb(kb, documents, models=False)}


@router.post(
    "/v1/kbs/{kb}/documents",
    response_model=IndexResult,
    responses=WRITE,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["files"],
                        "properties": {
                            "files": {"type": "array", "items": {"type": "string", "format": "binary"}}
                        },
                    }
                }
            },
        }
    },
)
async def upload_documents(kb: KBName, request: Request, kbs: KBs) -> Any:
    """Upload files (multipart field `files`, repeatable) and index them; each becomes `upload://NAME`.

    Re-uploading a name replaces that document (unchanged content costs nothing). Files that cannot
    be parsed are listed in `failures`; if no file could be read the answer is 422.
    """
    await kbs.get(kb)  # 404/409 before reading the body
    uploads = await read_uploads(request, kbs.settings, kb=kb, slots=kbs.parse_slots)
    if not uploads.documents:
        first = uploads.failures[0].reason if uploads.failures else "no file in the request"
        raise InvalidRequest(f"nothing to index: {first}")

    def add(base: KnowledgeBase) -> Any:
        report = base.add_documents(uploads.documents)
        report = dataclasses.replace(
            report,
            documents_failed=report.documents_failed + len(uploads.failures),
            failures=tuple(uploads.failures) + report.failures,
        )
        return _index_result(report)

    return await kbs.write_kb(kb, add)


@router.post(
    "/v1/kbs/{kb}/index", response_model=IndexResult, responses={**WRITE, 403: _error("Path refused")}
)
async def index_paths(kb: KBName, body: IndexPaths, kbs: KBs) -> Any:
    """Index files and folders on the server, confined to its index roots (`--index-root`).

    Symlinks are resolved before the check; `..`, paths outside the roots, NUL bytes and device
    files are refused with 403/422; links inside a folder that lead outside are skipped and listed.
    """
    await kbs.get(kb)  # 404/409 before any path is looked at
    roots = resolve_roots(kbs.settings.server.index_roots)
    targets = [confine(raw, roots) for raw in body.paths]

    def index(base: KnowledgeBase) -> dict[str, Any]:
        found = collect(targets, roots)
        report = base.add(found.files) if found.files else _empty_report()
        removed = _prune(base, targets, {source_name(f) for f in found.files}) if body.prune else 0
        report = dataclasses.replace(
            report,
            documents_removed=report.documents_removed + removed,
            documents_failed=report.documents_failed + len(found.skipped),
            failures=report.failures + tuple(found.skipped),
        )
        return _index_result(report)

    return await kbs.write_kb(kb, index)


def _empty_report() -> IndexReport:
    return IndexReport()


def _prune(base: KnowledgeBase, targets: list[Any], seen: set[str]) -> int:
    """Delete documents stored from under the folders in ``targets`` whose files were not seen."""
    prefixes = [source_name(t).rstrip("/") + "/" for t in targets if t.is_dir()]
    gone = [
        d.doc_id
        for d in base.documents()
        if d.source not in seen and any(d.source.startswith(p) for p in prefixes)
    ]
    return base.delete(gone) if gone else 0


@router.delete("/v1/kbs/{kb}/documents/{doc_id}", response_model=Deleted, responses=WRITE)
async def delete_document(kb: KBName, doc_id: DocId, kbs: KBs) -> Any:
    """Delete one document by id; it is gone from results at once."""
    deleted = await kbs.write_kb(kb, lambda base: base.delete([doc_id]))
    return {"deleted": deleted}


@router.post("/v1/kbs/{kb}/search", response_model=SearchResponse, responses=READ)
async def search(kb: KBName, body: SearchRequest, kbs: KBs) -> Any:
    """Hybrid recall, then rerank: the hits of `finesift search --json`, plus the query's terms and what
    the scores are (`score`)."""
    request = build_search(
        body.query,
        kbs.settings.search,
        source=body.source,
        file_types=body.file_types,
        **body.overrides(),
    )

    def run(base: KnowledgeBase) -> tuple[list[Any], str]:
        return base.run_search(request), score_kind(request.options, reranks=base.reranks)

    hits, kind = await kbs.read_kb(kb, run)
    body_out = {
        "hits": [dataclasses.asdict(h) for h in hits],
        "query_terms": request.query_terms(),
        "score": kind,
    }
    return JSONResponse(body_out)


def score_kind(options: SearchOptions, *, reranks: bool) -> str:
    """What the hits' ``score`` is: the stage that ran last (see :class:`SearchResponse`)."""
    if options.rerank and reranks:
        return "rerank"
    return {"hybrid": "rrf", "dense": "cosine", "bm25": "bm25"}[options.mode]
