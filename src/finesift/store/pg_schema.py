"""The pgvector store's tables: DDL and the names of one KB's tables (see :mod:`finesift.store.pgvector`)."""

from __future__ import annotations

from finesift.errors import InvalidRequest
from finesift.store import pg_vector_index as pv
from finesift.store.pg_lexical import POSTINGS, STATS_COLUMNS
from finesift.store.pg_vector_index import INDEXES


def render(prefix: str, text: str) -> str:
    """``text`` with ``{chunks}``, ``{docs}``, ``{meta}``, ``{log}``, ``{post}``... named for the KB."""
    names = {part: f'"{prefix}_{part}"' for part in ("chunks", "docs", "meta", "log")}
    names["post"] = f'"{prefix}_postings"'
    names["gin"] = f'"{prefix}_terms_gin"'  # the GIN index over the terms of tables before the postings
    names["docs_superseded"] = f'"{prefix}_docs_superseded"'
    names["hnsw"] = f'"{prefix}_hnsw"'  # tables from before have PostgreSQL's name for it (found by type)
    names["ivf"] = f'"{prefix}_ivf"'
    return text.format(**names)


def ddl(dimension: int, options: dict[str, str]) -> list[str]:
    """The statements that create one KB's tables (``{chunks}``... placeholders, see :func:`render`)."""
    kind = INDEXES.get(options.get("index", "hnsw").lower())
    if kind is None:
        raise InvalidRequest(
            f"unknown pgvector index {options['index']!r}; choose one of {', '.join(INDEXES)}"
        )
    ddl = [
        "CREATE EXTENSION IF NOT EXISTS vector",
        f"""CREATE TABLE {{chunks}} (doc_id text NOT NULL, gen bigint NOT NULL, superseded bigint NOT NULL
            DEFAULT 0, idx integer NOT NULL, source text NOT NULL, file_type text NOT NULL,
            text text NOT NULL, start_char bigint NOT NULL, end_char bigint NOT NULL, page integer NOT NULL,
            terms text[] NOT NULL,
            vector vector({dimension}) NOT NULL, PRIMARY KEY (doc_id, gen, idx))""",
        "CREATE INDEX ON {chunks} (superseded)",
        """CREATE TABLE {docs} (doc_id text NOT NULL, gen bigint NOT NULL, superseded bigint NOT NULL
            DEFAULT 0, info text NOT NULL, PRIMARY KEY (doc_id, gen))""",
        "CREATE TABLE {meta} (seq bigint NOT NULL, dim integer NOT NULL, committed_at double precision)",
        f"INSERT INTO {{meta}} (seq, dim, committed_at) VALUES (0, {dimension}, 0)",
        "CREATE TABLE {log} (seq bigint PRIMARY KEY, at double precision NOT NULL)",
        STATS_COLUMNS,
        pv.COLUMNS,
        *POSTINGS,
    ]
    if kind == "hnsw":
        ddl.append(pv.create_sql(options))
    return ddl
