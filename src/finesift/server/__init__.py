"""The HTTP server: OpenAI/Cohere/Jina-compatible embeddings and rerank (``finesift serve``).

Importing this package imports nothing heavy; :func:`finesift.server.app.create_app` builds the app.
"""
