"""Retrieval: lexical (BM25 with CJK tokenising), fusion (pure functions), and the pipeline."""
