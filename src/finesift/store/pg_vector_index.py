"""When the pgvector store's HNSW index is dropped for a bulk write and built again (see
:mod:`finesift.store.pgvector`).

Inserting a row into an HNSW index searches the graph for its neighbours and rewrites theirs, page by
page through the buffer manager; ``CREATE INDEX`` builds the same graph in memory. Measured on 1024-dim
vectors (2026-12-06, PostgreSQL 18, pgvector 0.8): 2,000 rows inserted into the index cost 7.9 s of
server CPU, while loading them without it took 0.8 s and building the index afterwards 1.1 s; 10,000
rows built in 10.9 s. So a commit that grows the table by a good part of what the index was built
over drops the index inside its own transaction (atomic with the commit: a crash leaves the old rows
*and* the index), later commits write without it, and the next compaction (``optimize``, which the
knowledge base runs after a write when :meth:`due`) builds it again over every row. Meanwhile dense
search is an exact scan: the same scores, full recall, slower on a large table.

The bookkeeping lives in the meta row: ``indexed_rows``, the chunk rows the index was built over, and
``added_rows``, rows inserted through it since. Tables from before have neither (``NULL``): their
index is kept until their first bulk commit counts as one.
"""

from __future__ import annotations

from typing import Any

#: The ``index`` URI option's values and the access method each builds ("" for none).
INDEXES = {"hnsw": "hnsw", "ivf": "ivfflat", "ivfflat": "ivfflat", "none": ""}

#: A commit drops the index once the rows added since it was built reach this share of its rows...
GROWTH = 0.25
#: ...and at least this many rows (small writes to small tables keep inserting through the index).
MIN_ROWS = 1000
#: ``maintenance_work_mem`` for a build when the URI sets none: enough for the graph of most KBs in
#: memory (rows x (4 x dim + neighbour lists)); a larger graph spills to a slower on-disk build.
DEFAULT_BUILD_MEM_MB = 1024

COLUMNS = (
    "ALTER TABLE {meta} ADD COLUMN IF NOT EXISTS indexed_rows bigint, "
    "ADD COLUMN IF NOT EXISTS added_rows bigint NOT NULL DEFAULT 0"
)
#: Whether the meta table has the bookkeeping columns (tables from before do not).
HAS_COLUMNS = (
    "SELECT count(*) = 2 FROM pg_attribute WHERE attrelid = '{meta}'::regclass "
    "AND attname IN ('indexed_rows', 'added_rows') AND NOT attisdropped"
)
#: The name of the chunks' HNSW index, whatever it was called when created.
FIND = """SELECT '"' || replace(c.relname, '"', '""') || '"' FROM pg_index AS i
JOIN pg_class AS c ON c.oid = i.indexrelid JOIN pg_am AS a ON a.oid = c.relam
WHERE i.indrelid = '{chunks}'::regclass AND a.amname = 'hnsw'"""


def create_sql(options: dict[str, str]) -> str:
    """``CREATE INDEX`` of the HNSW index over the chunks' vectors (``m``, ``ef_construction``: URI)."""
    m, ef = int(options.get("m", 16)), int(options.get("ef_construction", 64))
    return (
        "CREATE INDEX {hnsw} ON {chunks} USING hnsw (vector vector_ip_ops) "
        f"WITH (m = {m}, ef_construction = {ef})"
    )


def wanted(options: dict[str, str]) -> bool:
    """Whether the store's URI asks for an HNSW index (the default)."""
    return options.get("index", "hnsw").lower() == "hnsw"


def existing(cur: Any, sql: Any) -> str | None:
    """The quoted name of the chunks' HNSW index, or None."""
    cur.execute(sql(FIND))
    row = cur.fetchone()
    return None if row is None else str(row[0])


def before_insert(cur: Any, sql: Any, new_rows: int) -> None:
    """Drop the index if this commit makes the rows added since its build a bulk; count the rows otherwise.

    Call inside the commit's transaction, with the meta row locked, before the rows are written.
    """
    name = existing(cur, sql)
    if name is None:
        return
    cur.execute(sql("SELECT indexed_rows, added_rows FROM {meta}"))
    indexed, added = cur.fetchone()
    if indexed is None:  # a table from before the bookkeeping: its index covers what is there now
        cur.execute(sql("SELECT count(*) FROM {chunks}"))
        indexed = int(cur.fetchone()[0])
        cur.execute(sql("UPDATE {meta} SET indexed_rows = %s"), [indexed])
    added = int(added) + new_rows
    if added >= max(MIN_ROWS, GROWTH * int(indexed)):
        cur.execute(f"DROP INDEX {name}")
        added = 0
    cur.execute(sql("UPDATE {meta} SET added_rows = %s"), [added])


def build(cur: Any, sql: Any, options: dict[str, str]) -> bool:
    """Build the missing index over every row (inside the caller's transaction); whether it did."""
    if existing(cur, sql) is not None:
        return False
    mem_mb = int(options.get("maintenance_work_mem_mb", DEFAULT_BUILD_MEM_MB))
    cur.execute("SELECT setting::bigint / 1024 FROM pg_settings WHERE name = 'maintenance_work_mem'")
    if mem_mb > int(cur.fetchone()[0]):  # never lower what the server's administrator set
        cur.execute(f"SET LOCAL maintenance_work_mem = '{mem_mb}MB'")
    cur.execute(sql(create_sql(options)))
    # Statistics of the rows a bulk write added: without them the planner takes the visibility
    # filter for selective and sorts an exact scan (212 ms) instead of the index scan (3 ms).
    cur.execute(sql("ANALYZE {chunks}, {post}"))
    cur.execute(sql("UPDATE {meta} SET indexed_rows = (SELECT count(*) FROM {chunks}), added_rows = 0"))
    return True


#: Rows per IVF list before the IVFFlat index is built (search is exact until then).
IVF_ROWS_PER_LIST = 50


def build_ivf(cur: Any, sql: Any, options: dict[str, str]) -> None:
    """Create the IVFFlat index (``index=ivf``) once the table holds enough rows to train its lists on.

    IVFFlat learns its centroids from the rows present when it is built, so an index built on
    an empty table is useless; until the table holds ``IVF_ROWS_PER_LIST`` rows per list,
    search is exact. Rebuild it (``REINDEX``) after the data has grown several times over.
    """
    if INDEXES.get(options.get("index", "hnsw").lower()) != "ivfflat":
        return
    cur.execute(sql("SELECT to_regclass('{ivf}') IS NOT NULL"))
    if cur.fetchone()[0]:
        return
    lists = int(options.get("lists", 100))
    cur.execute(sql("SELECT count(*) FROM {chunks}"))
    if int(cur.fetchone()[0]) >= IVF_ROWS_PER_LIST * lists:
        cur.execute(
            sql("CREATE INDEX {ivf} ON {chunks} USING ivfflat (vector vector_ip_ops) ")
            + f"WITH (lists = {lists})"
        )
