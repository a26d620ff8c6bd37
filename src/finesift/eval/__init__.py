"""Evaluation harness: BEIR-format data, trec_eval metrics, and a runner for dense, BM25, hybrid and rerank.

The harness works directly on the data (no knowledge base): exact cosine search over the whole
corpus, the library's BM25 and RRF, and the published rerank protocol (dense top-100, then rerank).
Nothing heavy is imported here; models load only when a run needs them.
"""
