"""Milvus collections of one KB: schemas, indexes, filter expressions (see :mod:`finesift.store.milvus`).

The chunks collection runs BM25 inside Milvus (Milvus >= 2.5): ``lex`` holds finesift's own terms of
the chunk (:func:`finesift.store.lexical_text.joined_terms`), analysed by a whitespace tokenizer,
and a BM25 function turns it into the sparse vector ``sparse`` with a ``SPARSE_INVERTED_INDEX``.
Milvus Lite (checked with 3.2.2) has no whitespace tokenizer ("unknown tokenizer type: 'whitespace'
(supported: 'standard', 'jieba')"); its ``standard`` tokenizer (``\\w+``, lower-cased) gives the same
terms back from the escaped text, so it is used there instead. Milvus computes BM25's statistics
(chunk count, average length, document frequencies) over the rows it holds, which include superseded
versions kept for older snapshots (Milvus Lite 3.2.2: per segment); results honour the snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from finesift.errors import InvalidRequest
from finesift.store.base import Filters
from finesift.store.lexical_text import BM25_B, BM25_K1

#: The text field of the chunks collection that BM25 indexes, and the sparse field it produces.
LEX_FIELD, SPARSE_FIELD = "lex", "sparse"
WHITESPACE = {"tokenizer": "whitespace"}
#: Milvus Lite's ``standard`` tokenizer: ``\w+`` lower-cased, which keeps escaped terms exact.
LITE_STANDARD = {"tokenizer": "standard"}
INDEX_TYPES = {"hnsw": "HNSW", "ivf": "IVF_FLAT", "ivf_flat": "IVF_FLAT", "flat": "FLAT"}


def create_collections(client: Any, prefix: str, dimension: int, options: dict[str, str]) -> None:
    """Create the chunks, docs and commits collections of one KB, with the chosen vector index."""
    from pymilvus import MilvusException

    kind, params = _vector_index(options)
    for part, columns in _fields(dimension).items():
        if part != "chunks":
            _create(client, f"{prefix}_{part}", columns, ("v", "FLAT", "L2", {}))
            continue
        try:
            _create(client, f"{prefix}_{part}", columns, ("vector", kind, "IP", params), WHITESPACE)
        except MilvusException as exc:
            if "supported: 'standard', 'jieba'" not in str(exc):  # Milvus Lite's answer only
                raise
            _create(client, f"{prefix}_{part}", columns, ("vector", kind, "IP", params), LITE_STANDARD)


def _vector_index(options: dict[str, str]) -> tuple[str, dict[str, Any]]:
    kind = INDEX_TYPES.get(options.get("index", "hnsw").lower())
    if kind is None:
        raise InvalidRequest(
            f"unknown Milvus index {options['index']!r}; choose one of {', '.join(INDEX_TYPES)}"
        )
    params = {
        "HNSW": {"M": int(options.get("M", 16)), "efConstruction": int(options.get("efConstruction", 200))},
        "IVF_FLAT": {"nlist": int(options.get("nlist", 1024))},
        "FLAT": {},
    }[kind]
    return kind, params


def _fields(dimension: int) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    from pymilvus import DataType as dt

    text = {"datatype": dt.VARCHAR, "max_length": 65535}
    return {
        "chunks": [
            ("pk", {"datatype": dt.VARCHAR, "max_length": 1024, "is_primary": True}),
            ("doc_key", {"datatype": dt.VARCHAR, "max_length": 1024}),
            ("doc_id", {"datatype": dt.VARCHAR, "max_length": 1024}),
            ("gen", {"datatype": dt.INT64}), ("superseded", {"datatype": dt.INT64}),
            ("idx", {"datatype": dt.INT64}),
            ("source", text), ("file_type", {"datatype": dt.VARCHAR, "max_length": 256}),
            ("text", text), ("start", {"datatype": dt.INT64}), ("end", {"datatype": dt.INT64}),
            ("page", {"datatype": dt.INT64}), ("terms", text),
            ("vector", {"datatype": dt.FLOAT_VECTOR, "dim": dimension}),
            (LEX_FIELD, {**text, "enable_analyzer": True}),
            (SPARSE_FIELD, {"datatype": dt.SPARSE_FLOAT_VECTOR}),
        ],
        "docs": [
            ("doc_key", {"datatype": dt.VARCHAR, "max_length": 1024, "is_primary": True}),
            ("doc_id", {"datatype": dt.VARCHAR, "max_length": 1024}),
            ("gen", {"datatype": dt.INT64}), ("superseded", {"datatype": dt.INT64}), ("info", text),
            ("v", {"datatype": dt.FLOAT_VECTOR, "dim": 2}),
        ],
        "commits": [
            ("seq", {"datatype": dt.INT64, "is_primary": True}), ("at", {"datatype": dt.DOUBLE}),
            ("v", {"datatype": dt.FLOAT_VECTOR, "dim": 2}),
        ],
    }  # fmt: skip


def _create(
    client: Any,
    name: str,
    columns: list[tuple[str, dict[str, Any]]],
    vector_index: tuple[str, str, str, dict[str, Any]],
    analyzer: dict[str, Any] | None = None,
) -> None:
    """One collection; with ``analyzer``, also the BM25 function and its sparse inverted index."""
    from pymilvus import Function, FunctionType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    for field, spec in columns:
        if field == LEX_FIELD:
            spec = {**spec, "analyzer_params": analyzer}
        schema.add_field(field, **spec)
    index = client.prepare_index_params()
    field, kind, metric, params = vector_index
    index.add_index(field, index_type=kind, metric_type=metric, params=params)
    if analyzer is not None:
        schema.add_function(
            Function(
                name="bm25", function_type=FunctionType.BM25,
                input_field_names=[LEX_FIELD], output_field_names=[SPARSE_FIELD],
            )
        )  # fmt: skip
        # Nested under "params", the wire format that Milvus (which merges it) and Milvus Lite (which
        # reads only that key, else uses its own default k1 = 1.5) both understand.
        index.add_index(
            SPARSE_FIELD, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
            params={"params": {"bm25_k1": BM25_K1, "bm25_b": BM25_B}},
        )  # fmt: skip
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")


def quote(value: str) -> str:
    """A Milvus expression string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def in_list(field: str, values: Sequence[str], *, negate: bool = False) -> str:
    return f"{field} {'not in' if negate else 'in'} [{', '.join(quote(v) for v in values)}]"


def visible_at(version: int) -> str:
    """The rows a snapshot at commit ``version`` sees."""
    return f"gen <= {version} and (superseded == 0 or superseded > {version})"


def filter_expr(filters: Filters | None) -> list[str]:
    """Milvus expressions for ``filters`` (results are re-checked with :meth:`Filters.accepts`)."""
    if filters is None or filters.empty:
        return []
    parts = []
    if filters.source_prefix:
        escaped = filters.source_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        parts.append(f"source like {quote(escaped + '%')}")
    if filters.file_types:
        parts.append(in_list("file_type", filters.file_types))
    if filters.doc_ids:
        parts.append(in_list("doc_id", filters.doc_ids))
    return parts


def parse_uri(uri: str) -> tuple[str, dict[str, str]]:
    """``(connection uri, options)``: options are the URI's query (``index``, ``M``, ``nlist``, ``ef``...)."""
    parts = urlsplit(uri)
    options = dict(parse_qsl(parts.query))
    if parts.scheme in ("", "file") or uri.endswith(".db"):
        return str(Path(parts.path).expanduser().resolve()), options
    scheme = {"milvus": "http", "milvuss": "https"}.get(parts.scheme, parts.scheme)
    return parts._replace(scheme=scheme, query="").geturl(), options
