"""Finding files to index, and how a file name becomes a recorded source (issue 22, items 1 and 9)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from finesift.kb.indexing import find_files, source_name, source_path


@pytest.mark.parametrize(
    "name",
    ["plain.md", "数据库.md", "caf\udce9.md", "a\\b\udcff.md", "back\\slash.md", "\udc80\udcfe"],
)
def test_source_names_are_utf8_and_reversible(name: str) -> None:
    path = Path("/docs") / name
    source = source_name(path)
    source.encode("utf-8")  # storable in any store, printable anywhere
    assert source_path(source) == path


def test_valid_names_are_recorded_as_they_are() -> None:
    assert source_name(Path("/docs/数据库.md")) == "/docs/数据库.md"
    assert source_name(Path("/docs/caf\udce9.md")) == "/docs/caf\\xe9.md"


def test_fifos_links_in_a_loop_and_unreadable_folders_are_reported(monkeypatch, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "good.md").write_text("x", encoding="utf-8")
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "loop.md").symlink_to(tmp_path / "loop.md")
    scandir = os.scandir

    def refuse(path):  # type: ignore[no-untyped-def]
        if os.fspath(path) == str(tmp_path / "sub"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse)
    found = find_files([tmp_path, tmp_path / "pipe"])
    names = [p.name for p in found.files]
    assert "good.md" in names and "sub" not in names
    reasons = {Path(f.source).name: f.reason for f in found.skipped}
    assert "cannot read the folder (Permission denied)" in reasons["sub"]
    assert "not a regular file or folder" in reasons["pipe"]
