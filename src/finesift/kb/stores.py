"""Opening a KB's store: the server store's token, the LanceDB index knobs, dropping a server store's data."""

from __future__ import annotations

from pathlib import Path

from finesift.kb import manifest as mf
from finesift.settings import Settings
from finesift.store.lance_index import LanceIndexOptions
from finesift.store.registry import open_store


def store_token(settings: Settings) -> str | None:
    """The server store's token from settings (never recorded in the KB)."""
    token = settings.kb.store_token
    return token.get_secret_value() if token is not None else None


def lance_options(settings: Settings) -> LanceIndexOptions:
    """The LanceDB index knobs from the ``kb.ann_*`` settings."""
    kb = settings.kb
    return LanceIndexOptions(kb.ann_min_rows, kb.ann_index, kb.ann_nprobes, kb.ann_refine_factor, kb.ann_ef)


def drop_server_data(manifest: mf.Manifest, path: Path, settings: Settings) -> None:
    """Drop a server store's collections/tables with its KB (local stores go with the directory)."""
    if manifest.store == "lancedb" or not path.exists():
        return
    store = open_store(manifest.store, path, dimension=manifest.dim, token=store_token(settings))
    destroy = getattr(store, "destroy", None)
    if destroy is not None:
        destroy()
    store.close()
