"""Vector stores behind the :class:`~finesift.store.base.VectorStore` protocol (LanceDB by default)."""
