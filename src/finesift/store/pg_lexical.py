"""BM25 inside PostgreSQL for the pgvector store (see :mod:`finesift.store.pgvector`).

finesift's own terms are kept as an inverted index in a postings table, one row per (term, chunk
version) with the term's frequency ``tf`` in the chunk and the chunk's length ``dl``, under a
B-tree whose key starts with the term and which carries ``tf`` and ``dl`` (a query reads index
entries, not chunk rows). Rows are written by the commit's transaction from the chunk rows it
inserts, and deleted with them when their version is purged, so the index is current and crash-safe
like the vectors. A posting is visible at snapshot ``V`` when its ``gen <= V`` and its document
version was not superseded at ``V`` (the few superseded versions come from the documents table).

The purge log keeps, per commit ``S``, the number of live chunks and their total term count after
``S`` (updated in the commit's transaction), so a snapshot knows BM25's ``N`` and average length
without a scan. A query reads the visible postings of its terms, counts each term's document
frequency among them and scores the chunks with Okapi BM25 exactly as
:class:`finesift.lexical.BM25Index` does (k1 = 1.2, b = 0.75, Lucene idf
``ln(1 + (N - df + 0.5) / (df + 0.5))``, a query term counted as often as it occurs); only the top
``k`` are joined to their chunk rows. Its cost grows with the postings of the query's terms, not
with the KB.

Tables written before (terms as JSON text, or a GIN index over the terms array) are converted once,
inside PostgreSQL, when the store is opened (:func:`migrate`).
"""

from __future__ import annotations

from typing import Any

from finesift.store.lexical_text import BM25_B, BM25_K1

#: Statistics of the live chunks after each commit, kept in the purge log.
STATS_COLUMNS = (
    "ALTER TABLE {log} ADD COLUMN IF NOT EXISTS n_chunks bigint, ADD COLUMN IF NOT EXISTS n_terms bigint"
)
POSTINGS = [
    """CREATE TABLE {post} (term text COLLATE "C" NOT NULL, doc_id text COLLATE "C" NOT NULL,
        gen bigint NOT NULL, idx integer NOT NULL, tf integer NOT NULL, dl integer NOT NULL,
        PRIMARY KEY (term, doc_id, gen, idx) INCLUDE (tf, dl))""",
    "CREATE INDEX IF NOT EXISTS {docs_superseded} ON {docs} (superseded)",
]
#: The postings of the chunk rows matching ``{where}`` (a commit's new rows, or all rows once).
FILL = """INSERT INTO {post} (term, doc_id, gen, idx, tf, dl)
SELECT t, doc_id, gen, idx, count(*), min(cardinality(terms)) FROM {chunks}, unnest(terms) AS t
WHERE {where} GROUP BY t, doc_id, gen, idx"""
FILL_COMMIT = FILL.replace("{where}", "doc_id = ANY(%s) AND gen = %s")
#: Delete the postings of the chunk versions purged up to a commit (found through their terms).
PURGE = """DELETE FROM {post} AS p USING (
    SELECT DISTINCT t, doc_id, gen FROM {chunks}, unnest(terms) AS t WHERE superseded > 0 AND superseded <= %s
) AS x WHERE p.term = x.t AND p.doc_id = x.doc_id AND p.gen = x.gen"""
_TO_ARRAY = [
    "ALTER TABLE {chunks} ADD COLUMN terms_array text[]",
    "UPDATE {chunks} SET terms_array = ARRAY(SELECT json_array_elements_text(terms::json))",
    "ALTER TABLE {chunks} DROP COLUMN terms",
    "ALTER TABLE {chunks} RENAME COLUMN terms_array TO terms",
    "ALTER TABLE {chunks} ALTER COLUMN terms SET NOT NULL",
]
#: Chunks and their terms, counted (when the log has no statistics for the commit).
TOTALS = "SELECT count(*), coalesce(sum(cardinality(terms)), 0) FROM {chunks} WHERE {visible}"
LIVE_TOTALS = TOTALS.replace("{visible}", "superseded = 0")
SUPERSEDE = """WITH marked AS (UPDATE {chunks} SET superseded = %s WHERE superseded = 0 AND doc_id = ANY(%s)
    RETURNING cardinality(terms) AS n) SELECT count(*), coalesce(sum(n), 0) FROM marked"""
_K1, _B = f"{BM25_K1}::float8", f"{BM25_B}::float8"
_SCORE = f"""
WITH q AS (SELECT t, count(*)::float8 AS qn FROM unnest(%s::text[]) AS t GROUP BY t),
gone AS MATERIALIZED (SELECT doc_id, gen FROM {{docs}} WHERE superseded > 0 AND superseded <= {{version}}),
hits AS MATERIALIZED (
    SELECT p.term AS t, p.doc_id, p.gen, p.idx, p.tf::float8 AS n, p.dl::float8 AS dl FROM {{post}} AS p
    WHERE p.term = ANY(%s::text[]) AND p.gen <= {{version}}
        AND NOT EXISTS (SELECT 1 FROM gone WHERE gone.doc_id = p.doc_id AND gone.gen = p.gen)
),
w AS (
    SELECT t, qn * ln(1.0::float8 + (%s::float8 - df + 0.5::float8) / (df + 0.5::float8)) AS w
    FROM (SELECT t, count(*)::float8 AS df FROM hits GROUP BY t) AS df JOIN q USING (t)
),
scored AS (
    SELECT doc_id, gen, idx, sum(
        w * n * ({_K1} + 1.0::float8) / (n + {_K1} * (1.0::float8 - {_B} + {_B} * dl / %s::float8))
    ) AS score
    FROM hits JOIN w USING (t) WHERE true{{filters}} GROUP BY doc_id, gen, idx
),
top AS MATERIALIZED (
    SELECT doc_id, gen, idx, score, round(score * 1e9::float8) AS rounded FROM scored WHERE score > 0
    ORDER BY rounded DESC, doc_id, idx LIMIT %s
)
SELECT {{columns}}, top.score FROM top
JOIN {{chunks}} AS c ON c.doc_id = top.doc_id COLLATE "default" AND c.gen = top.gen AND c.idx = top.idx
ORDER BY top.rounded DESC, top.doc_id, top.idx
"""


def score_sql(version: int, columns: str, filters: str) -> str:
    """The BM25 query at commit ``version``; parameters: terms (twice), N, avg length, filter values..., k.

    ``filters`` is a condition on chunk columns (`` AND ...``, unqualified), applied to the scored
    chunks through their rows (document frequencies count every visible chunk); ``columns`` are
    qualified by ``c.``. Ties are broken by chunk id, the order of every store (scores rounded to
    1e-9 first, so that a different summation order does not reorder equal scores).
    """
    if filters:
        visible = f"gen <= {version} AND (superseded = 0 OR superseded > {version})"
        rows = f"SELECT doc_id, gen, idx FROM {{chunks}} WHERE {visible}{filters}"
        filters = f" AND (doc_id, gen, idx) IN ({rows})"
    text = _SCORE.replace("{version}", str(int(version))).replace("{columns}", columns)
    return text.replace("{filters}", filters)


#: The type of the chunks' ``terms`` column: ``text[]``, or ``text`` (JSON) in tables to migrate;
#: and whether the postings table exists.
LAYOUT = (
    "SELECT format_type(atttypid, atttypmod), to_regclass('{post}') IS NOT NULL FROM pg_attribute "
    "WHERE attrelid = '{chunks}'::regclass AND attname = 'terms'"
)


def migrate(cur: Any, sql: Any) -> bool:
    """Give older tables ``text[]`` terms, stats columns and the postings table; whether it did."""
    cur.execute(sql(LAYOUT))
    terms_type, has_postings = cur.fetchone()
    steps = [] if terms_type == "text[]" else [*_TO_ARRAY, STATS_COLUMNS]
    if not has_postings:
        steps += [*POSTINGS, FILL.replace("{where}", "true"), "DROP INDEX IF EXISTS {gin}"]
    for statement in steps:
        cur.execute(sql(statement))
    return bool(steps)
