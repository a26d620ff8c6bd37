"""Opening the LanceDB store skips the REST namespace client's API modules (a fresh search's start-up)."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROGRAM = """
import sys
from finesift.store import lancedb as store
store._lancedb()
skipped = not any(m.startswith(store.REST_CLIENT + ".api") for m in sys.modules)
import lance_namespace_urllib3_client as client
from lance_namespace_urllib3_client import BranchApi
print(skipped, hasattr(client, "ApiClient"), hasattr(client.models, "QueryTableRequest"), BranchApi.__name__)
"""


def test_import_lancedb_without_the_rest_api_modules_which_import_later_on_demand() -> None:
    pytest.importorskip("lancedb")
    done = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True", "True", "BranchApi"], done.stderr[-2000:]
