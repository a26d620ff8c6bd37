"""BM25 inside PostgreSQL for the pgvector store (see :mod:`finesift.store.pgvector`).

Each chunk row keeps finesift's own terms as ``terms text[]`` (duplicates kept: their count is the
term frequency) under a GIN index. The purge log keeps, per commit ``S``, the number of live chunks
and their total term count after ``S`` (updated in the commit's transaction), so a snapshot at ``V``
knows BM25's ``N`` and average length without a scan. A query then reads, through the GIN index,
only the visible rows holding one of its terms: it counts each term's document frequency among them
and scores them with Okapi BM25 exactly as :class:`finesift.lexical.BM25Index` does (k1 = 1.2,
b = 0.75, Lucene idf ``ln(1 + (N - df + 0.5) / (df + 0.5))``, a query term counted as often as it
occurs), over the snapshot's own rows. Nothing is loaded into the client but the top ``k``.

Tables written before ``terms`` was an array are converted once, inside PostgreSQL, when the store
is opened (:func:`migrate`).
"""

from __future__ import annotations

from typing import Any

from finesift.store.lexical_text import BM25_B, BM25_K1

#: Statistics of the live chunks after each commit, kept in the purge log.
STATS_COLUMNS = (
    "ALTER TABLE {log} ADD COLUMN IF NOT EXISTS n_chunks bigint, ADD COLUMN IF NOT EXISTS n_terms bigint"
)
GIN_INDEX = "CREATE INDEX IF NOT EXISTS {gin} ON {chunks} USING gin (terms)"
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
tf AS MATERIALIZED (SELECT * FROM (
    SELECT c.doc_id, c.gen, c.idx, c.source, c.file_type, cardinality(c.terms)::float8 AS dl, q.t, q.qn,
        (cardinality(c.terms) - cardinality(array_remove(c.terms, q.t)))::float8 AS n
    FROM {{chunks}} AS c CROSS JOIN q WHERE c.terms && %s::text[] AND {{visible}}
) AS pairs WHERE n > 0),
df AS (SELECT t, count(*)::float8 AS df FROM tf GROUP BY t),
scored AS (
    SELECT doc_id, gen, idx, sum(
        qn * ln(1.0::float8 + (%s::float8 - df + 0.5::float8) / (df + 0.5::float8))
        * n * ({_K1} + 1.0::float8) / (n + {_K1} * (1.0::float8 - {_B} + {_B} * dl / %s::float8))
    ) AS score
    FROM tf JOIN df USING (t) WHERE true{{filters}} GROUP BY doc_id, gen, idx
),
top AS MATERIALIZED (
    SELECT doc_id, gen, idx, score, round(score * 1e9::float8) AS rounded FROM scored WHERE score > 0
    ORDER BY rounded DESC, doc_id COLLATE "C", idx LIMIT %s
)
SELECT {{columns}}, top.score FROM top
JOIN {{chunks}} AS c ON c.doc_id = top.doc_id AND c.gen = top.gen AND c.idx = top.idx
ORDER BY top.rounded DESC, top.doc_id COLLATE "C", top.idx
"""


def score_sql(visible: str, columns: str, filters: str) -> str:
    """The BM25 query; parameters: terms (twice), N, average length, filter values..., k.

    ``visible`` and ``filters`` name chunk columns unqualified, ``columns`` qualified by ``c.``;
    ties are broken by chunk id, the order of every store (scores rounded to 1e-9 first, so that a
    different summation order does not reorder equal scores).
    """
    return _SCORE.replace("{visible}", visible).replace("{columns}", columns).replace("{filters}", filters)


#: The type of the chunks' ``terms`` column: ``text[]``, or ``text`` (JSON) in tables to migrate.
TERMS_TYPE = (
    "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
    "WHERE attrelid = '{chunks}'::regclass AND attname = 'terms'"
)


def migrate(cur: Any, sql: Any) -> bool:
    """Convert JSON ``terms`` to ``text[]`` with its GIN index and stats columns; whether it did."""
    cur.execute(sql(TERMS_TYPE))
    if cur.fetchone()[0] == "text[]":
        return False
    for statement in [*_TO_ARRAY, STATS_COLUMNS, GIN_INDEX]:
        cur.execute(sql(statement))
    return True
