"""The Milvus collections of one knowledge base: schemas and indexes (see :mod:`finesift.store.milvus`)."""

from __future__ import annotations

from typing import Any

from finesift.errors import InvalidRequest

INDEX_TYPES = {"hnsw": "HNSW", "ivf": "IVF_FLAT", "ivf_flat": "IVF_FLAT", "flat": "FLAT"}


def create_collections(client: Any, prefix: str, dimension: int, options: dict[str, str]) -> None:
    """Create the chunks, docs and commits collections of one KB, with the chosen vector index."""
    from pymilvus import DataType as dt

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
    text = {"datatype": dt.VARCHAR, "max_length": 65535}
    fields: dict[str, list[tuple[str, dict[str, Any]]]] = {
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
    for part, columns in fields.items():
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        for name, spec in columns:
            schema.add_field(name, **spec)
        index = client.prepare_index_params()
        if part == "chunks":
            index.add_index("vector", index_type=kind, metric_type="IP", params=params)
        else:
            index.add_index("v", index_type="FLAT", metric_type="L2")
        client.create_collection(
            f"{prefix}_{part}", schema=schema, index_params=index, consistency_level="Strong"
        )
