"""``POST /v1/kbs/{kb}/index`` and uploads on awkward input (issue 22, items 1, 2, 7 and 9): file names
that are not UTF-8, symlink loops, FIFOs, unreadable folders and the per-document caps."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from server_support import post_json, ready_client

from finesift.server.app import create_app
from finesift.settings import Settings

pytest.importorskip("lancedb")

LATIN1 = "caf\udce9.md"  # b"caf\xe9.md" as Python names it (surrogateescape)
ESCAPED = "caf\\xe9.md"


def _settings(home: Path, root: Path, **kb: object) -> Settings:
    return Settings(
        home=home,
        embedding={"model": "fake"},
        reranker={"model": "fake"},
        server={"index_roots": (root,)},
        kb={"chunk_size": 32, "chunk_overlap": 4, **kb},
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Good files, a Latin-1 file name, symlink loops, a FIFO and a long file."""
    root = tmp_path / "root"
    docs = root / "docs"
    docs.mkdir(parents=True)
    (docs / "good.md").write_text("Backups run nightly at two.", encoding="utf-8")
    (docs / LATIN1).write_text("The café serves espresso.", encoding="utf-8")
    loops = root / "loops"
    loops.mkdir()
    (loops / "ok.md").write_text("Restores are tested monthly.", encoding="utf-8")
    (loops / "self.md").symlink_to(loops / "self.md")
    (loops / "a.md").symlink_to(loops / "b.md")
    (loops / "b.md").symlink_to(loops / "a.md")
    (root / "long.md").write_text(" ".join(f"word{i}" for i in range(400)), encoding="utf-8")
    os.mkfifo(root / "pipe")
    return root


def _index(client, paths, **body):  # type: ignore[no-untyped-def]
    return post_json(client, "/v1/kbs/kb/index", {"paths": paths, **body})


def test_a_file_name_that_is_not_utf8_is_indexed_escaped(tmp_path: Path, root: Path) -> None:
    with ready_client(create_app(_settings(tmp_path / "home", root))) as client:
        assert post_json(client, "/v1/kbs", {"name": "kb", "rerank": False}).status_code == 201
        response = _index(client, ["docs"])
        assert response.status_code == 200, response.text
        report = response.json()
        assert sorted(Path(d["source"]).name for d in report["documents"]) == [ESCAPED, "good.md"]
        stored = next(d["source"] for d in report["documents"] if d["source"].endswith(ESCAPED))
        assert stored == f"{root.resolve() / 'docs'}/{ESCAPED}"  # recorded escaped, losslessly
        hits = post_json(client, "/v1/kbs/kb/search", {"query": "espresso", "mode": "bm25"}).json()["hits"]
        assert [Path(h["source"]).name for h in hits] == [ESCAPED]
        assert _index(client, ["docs"]).json()["documents_unchanged"] == 2  # the same name again
        assert _index(client, [f"docs/{ESCAPED}"]).json()["documents_unchanged"] == 1  # named as recorded
        pruned = _index(client, ["docs"], prune=True).json()
        assert pruned["documents_removed"] == 0 and pruned["documents_unchanged"] == 2


def test_symlink_loops_in_a_folder_are_listed_as_failures(tmp_path: Path, root: Path) -> None:
    with ready_client(create_app(_settings(tmp_path / "home", root))) as client:
        post_json(client, "/v1/kbs", {"name": "kb", "rerank": False})
        response = _index(client, ["loops"])
        assert response.status_code == 200, response.text
        report = response.json()
        assert [Path(d["source"]).name for d in report["documents"]] == ["ok.md"]
        assert sorted(Path(f["source"]).name for f in report["failures"]) == ["a.md", "b.md", "self.md"]
        assert report["documents_failed"] == 3
        assert all("symbolic links" in f["reason"] for f in report["failures"])


def test_a_loop_named_directly_is_refused(tmp_path: Path, root: Path) -> None:
    with ready_client(create_app(_settings(tmp_path / "home", root))) as client:
        post_json(client, "/v1/kbs", {"name": "kb", "rerank": False})
        response = _index(client, ["loops/self.md"])
        assert response.status_code == 422, response.text
        assert "symbolic links" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("cap", "setting"), [("max_chunks", "kb.max_chunks"), ("max_tokens", "kb.max_tokens")]
)
def test_caps_found_while_indexing_are_413(tmp_path: Path, root: Path, cap: str, setting: str) -> None:
    with ready_client(create_app(_settings(tmp_path / "home", root, **{cap: 5}))) as client:
        post_json(client, "/v1/kbs", {"name": "kb", "rerank": False})
        single = _index(client, ["long.md"])
        assert single.status_code == 413, single.text
        error = single.json()["error"]
        assert error["code"] == "too_large" and setting in error["message"]
        upload = client.post(
            "/v1/kbs/kb/documents", files=[("files", ("long.md", (root / "long.md").read_bytes()))]
        )
        assert upload.status_code == 413 and setting in upload.json()["error"]["message"]
        several = _index(client, ["long.md", "docs/good.md"])  # one stored: the cap is a listed failure
        assert several.status_code == 200, several.text
        [failure] = several.json()["failures"]
        assert setting in failure["reason"] and failure["too_large"] is True


def test_an_unreadable_folder_is_reported(monkeypatch, tmp_path: Path, root: Path) -> None:
    locked = root / "docs" / "locked"
    locked.mkdir()
    (locked / "x.md").write_text("hidden text", encoding="utf-8")
    scandir = os.scandir

    def refuse(path):  # type: ignore[no-untyped-def]  # chmod 000 does not stop root
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse)
    with ready_client(create_app(_settings(tmp_path / "home", root))) as client:
        post_json(client, "/v1/kbs", {"name": "kb", "rerank": False})
        report = _index(client, ["docs"]).json()
    [failure] = [f for f in report["failures"] if f["source"].endswith("locked")]
    assert "cannot read the folder" in failure["reason"] and "Permission denied" in failure["reason"]
