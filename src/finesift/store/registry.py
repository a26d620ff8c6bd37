"""Stores by name: ``name -> "module:factory"`` plus the pip extra, imported only when chosen.

A factory is called as ``factory(path, dimension=..., create=..., **options)`` and returns a
:class:`~finesift.store.base.VectorStore`; ``path`` is the knowledge base's private directory.
A KB records its store as a name (``lancedb``) or a URI, which :func:`store_kind` maps to a name:
a ``.db`` path or ``http(s)://``/``milvus://`` URL is Milvus, ``postgresql://`` is pgvector. Server
stores keep the URI and their collection or table prefix in ``path``; credentials never go there
(pass ``token``, or the libpq environment such as ``PGPASSWORD``).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from finesift.errors import InvalidRequest
from finesift.registry import Entry, load_factory
from finesift.store.base import VectorStore
from finesift.store.lance_index import LanceIndexOptions

STORES: dict[str, Entry] = {
    "lancedb": Entry("finesift.store.lancedb:open_store", "kb"),
    "milvus": Entry("finesift.store.milvus:open_store", "milvus"),
    "pgvector": Entry("finesift.store.pgvector:open_store", "pgvector"),
}
_SCHEMES = {
    "http": "milvus", "https": "milvus", "milvus": "milvus", "milvuss": "milvus", "tcp": "milvus",
    "postgresql": "pgvector", "postgres": "pgvector", "pgvector": "pgvector",
}  # fmt: skip


def store_kind(uri: str) -> str:
    """The registry name for a store name or URI; :class:`InvalidRequest` lists the accepted forms."""
    if uri in STORES:
        return uri
    scheme = urlsplit(uri).scheme.lower()
    if scheme in _SCHEMES:
        return _SCHEMES[scheme]
    if urlsplit(uri).path.endswith(".db") and scheme in ("", "file"):
        return "milvus"
    raise InvalidRequest(
        f"unknown store {uri!r}; use lancedb, a Milvus Lite file (./kb.db), http://host:19530 "
        "(Milvus), or postgresql://user@host/db (pgvector)"
    )


def normalize_store_uri(uri: str) -> str:
    """``uri`` with a Milvus Lite file path made absolute (a KB must open from any directory)."""
    parts = urlsplit(uri)
    if store_kind(uri) == "milvus" and parts.scheme in ("", "file"):
        return str(Path(parts.path).expanduser().resolve()) + (f"?{parts.query}" if parts.query else "")
    return uri


def open_store(
    kind: str,
    path: Path,
    *,
    dimension: int,
    create: bool = False,
    token: str | None = None,
    lance: LanceIndexOptions | None = None,
) -> VectorStore:
    """Open (or create) the store named or addressed by ``kind`` in ``path`` (``lance``: LanceDB's knobs)."""
    name = store_kind(kind)
    factory = load_factory("store", name, STORES)
    if name == "lancedb":
        store: VectorStore = factory(path, dimension=dimension, create=create, options=lance)
    else:
        uri = "" if kind == name else kind
        if create and not uri:
            raise InvalidRequest(f"the {name} store needs a URI; pass --store URI")
        store = factory(path, dimension=dimension, create=create, uri=uri, token=token)
    return store
