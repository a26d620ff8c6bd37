"""A KB's folder and store: creating both at once, the server store's token, the LanceDB index knobs,
dropping a KB with its server store's data."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from finesift.errors import Conflict
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


def create_kb_dir(target: Path, manifest: mf.Manifest, settings: Settings) -> None:
    """The KB folder ``target`` with an empty store and ``manifest``, built in a staging folder and renamed
    into place (a crash leaves no half-made KB); :class:`Conflict` when the files cannot be written."""
    name = manifest.name
    staging = target.parent / f".staging-{name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        open_store(
            manifest.store,
            staging / "store",
            dimension=manifest.dim,
            create=True,
            token=store_token(settings),
        ).close()
        mf.write_manifest(staging, manifest)
        os.rename(staging, target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise Conflict(f"cannot create knowledge base {name!r}: {exc}") from exc
    except Exception:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def drop_kb_dir(path: Path, name: str, settings: Settings) -> None:
    """Delete the KB at ``path`` and its server store's data, under the writer lock (refused while held)."""
    mf.read_manifest(path, name)
    with mf.writer_lock(path, name):
        manifest = mf.read_manifest(path, name)
        drop_server_data(manifest, mf.store_path(path, manifest), settings)
        trash = path.with_name(f".trash-{name}-{uuid.uuid4().hex[:8]}")
        os.rename(path, trash)
    shutil.rmtree(trash, ignore_errors=True)
