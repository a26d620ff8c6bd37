"""`import finesift` stays cheap: no torch, transformers, or server stack at import time."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["torch", "transformers", "fastapi", "lancedb", "sentence_transformers", "numpy.linalg.tests", "ray"]


def test_import_finesift_loads_no_heavy_module() -> None:
    code = (
        "import sys, json, finesift; "
        "finesift.InvalidRequest; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_public_api_names() -> None:
    import finesift

    for name in ("load_embedder", "load_reranker", "Embedder", "Reranker", "Settings", "INSTRUCTIONS"):
        assert getattr(finesift, name) is not None
    assert set(finesift.__all__) >= {"load_embedder", "load_reranker", "FinesiftError"}
