"""Ingest: loaders (one small function per format) and token-aware chunking."""
