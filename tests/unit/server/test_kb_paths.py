"""Path confinement and upload names: pure functions, no server."""

from __future__ import annotations

import os

import pytest

from finesift.errors import Forbidden, InvalidRequest
from finesift.server.paths import collect, confine, resolve_roots
from finesift.server.uploads import safe_name


@pytest.fixture
def tree(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a" / "b").mkdir(parents=True)
    outside.mkdir()
    (root / "a" / "one.md").write_text("one")
    (root / "a" / "b" / "two.md").write_text("two")
    (root / "a" / ".hidden.md").write_text("hidden")
    (outside / "secret.md").write_text("secret")
    (root / "a" / "inside-link.md").symlink_to(root / "a" / "one.md")
    (root / "a" / "escape.md").symlink_to(outside / "secret.md")
    (root / "a" / "escape-dir").symlink_to(outside, target_is_directory=True)
    (root / "a" / "broken.md").symlink_to(root / "missing.md")
    return resolve_roots([root]), root, outside


def test_relative_and_absolute_paths_inside_are_accepted(tree):
    roots, root, _ = tree
    assert confine("a", roots) == root.resolve() / "a"
    assert confine("a/one.md", roots) == root.resolve() / "a" / "one.md"
    assert confine(str(root / "a" / "b"), roots) == root.resolve() / "a" / "b"
    assert confine("a/inside-link.md", roots) == root.resolve() / "a" / "one.md"
    assert confine(str(root), roots) == root.resolve()


@pytest.mark.parametrize(
    "raw", ["..", "../outside", "a/../..", "a/../../outside/secret.md", "a/escape.md", "a/escape-dir", "/etc"]
)
def test_escapes_are_forbidden(tree, raw):
    roots, _, _ = tree
    with pytest.raises(Forbidden):
        confine(raw, roots)


def test_a_sibling_with_the_root_as_prefix_is_outside(tree, tmp_path):
    roots, _, _ = tree
    sibling = tmp_path / "root2"
    sibling.mkdir()
    with pytest.raises(Forbidden, match="outside"):
        confine(str(sibling), roots)


def test_devices_and_fifos_are_forbidden(tree):
    roots, root, _ = tree
    os.mkfifo(root / "fifo")
    with pytest.raises(Forbidden, match="regular"):
        confine("fifo", roots)
    with pytest.raises(Forbidden):
        confine("/dev/zero", roots)


@pytest.mark.parametrize("raw", ["", "   ", "a\x00b", 5, None, "x" * 5000, "missing.md"])
def test_malformed_paths_are_invalid(tree, raw):
    roots, _, _ = tree
    with pytest.raises(InvalidRequest):
        confine(raw, roots)


def test_no_roots_means_no_server_paths(tmp_path):
    with pytest.raises(Forbidden, match="--index-root"):
        confine(str(tmp_path), ())


def test_collect_skips_links_leading_outside_and_hidden_files(tree):
    roots, root, _ = tree
    found = collect([confine("a", roots)], roots)
    real = root.resolve()
    assert found.files == [real / "a" / "b" / "two.md", real / "a" / "one.md"]
    reasons = sorted(f.reason for f in found.skipped)
    assert reasons == [
        "broken.md: cannot be read (No such file or directory); skipped",
        "escape.md: links outside the index roots; skipped",
    ]


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("notes.md", "notes.md"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\report.pdf", "report.pdf"),
        ("a\x07b.txt", "ab.txt"),
        ("数据库.md", "数据库.md"),
    ],
)
def test_upload_names_are_reduced_to_a_base_name(raw, name):
    assert safe_name(raw) == name


@pytest.mark.parametrize("raw", [None, "", "..", ".", "dir/", "a\x00.md", "x" * 300])
def test_bad_upload_names_are_refused(raw):
    with pytest.raises(InvalidRequest):
        safe_name(raw)
