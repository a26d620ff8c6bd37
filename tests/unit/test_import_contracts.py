"""What ``lint-imports`` cannot see: modules loaded by name, and packages the contracts forget.

import-linter reads ``import`` statements only. A module loaded with ``importlib.import_module(name)``
or ``__import__(name)`` draws an arrow no contract checks, so every such call in the library must
either name a third-party module literally, or sit at one of the listed sites, whose table of names
stays inside the package that loads them. And a package missing from the contracts' lists is checked
by none of them, so every package and top-level module must appear there.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "finesift"
LOADERS = {"import_module", "__import__"}
# (file, the table of module names it loads from) -> the package every name in the table must lie in.
NAME_TABLES = {
    ("cli/app.py", "COMMAND_MODULES"): "finesift.cli",
    ("server/app.py", "ROUTE_MODULES"): "finesift.server",
    ("__init__.py", "_LAZY"): "finesift",
    ("train/__init__.py", "_LAZY"): "finesift.train",
    ("registry.py", "table"): "finesift",
}
# Registry tables: Entry("module:function") targets must stay in the registry's own package.
REGISTRIES = {
    "embedding/registry.py": "finesift.embedding",
    "rerank/registry.py": "finesift.rerank",
    "store/registry.py": "finesift.store",
}
# Outside the layers on purpose: the test doubles, the package root, ``python -m finesift``, sample files.
UNLAYERED = {"testing", "samples", "__init__", "__main__"}


def _calls(tree: ast.AST) -> list[ast.Call]:
    """Calls to ``import_module``/``__import__`` under any spelling (``importlib.import_module`` too)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in LOADERS:
                out.append(node)
    return out


def _literal(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def dynamic_imports(path: Path, tree: ast.AST) -> list[str]:
    """Problems with the by-name imports of one file (empty when it has none or all are allowed)."""
    rel = path.relative_to(SRC).as_posix()
    problems = []
    for call in _calls(tree):
        arg = call.args[0] if call.args else None
        literal = _literal(arg) if arg is not None else None
        if literal is not None:
            if literal.split(".")[0] == "finesift":
                problems.append(f"{rel}:{call.lineno} loads {literal!r} by name: use an import statement")
        elif not any(file == rel for file, _ in NAME_TABLES):
            problems.append(f"{rel}:{call.lineno} loads a module whose name is computed: list the site")
    return problems


def module_tables(tree: ast.AST) -> dict[str, list[str]]:
    """Module-level tuples, lists and dicts of string constants (dict keys ignored: values are modules)."""
    tables: dict[str, list[str]] = {}
    for node in getattr(tree, "body", []):
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            value = node.value
            items = value.values if isinstance(value, ast.Dict) else getattr(value, "elts", [])
            names = [s for s in map(_literal, items) if s is not None]
            if isinstance(target, ast.Name) and names:
                tables[target.id] = names
    return tables


def entry_targets(tree: ast.AST) -> list[str]:
    return [
        _literal(node.args[0]) or "?"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Entry" and node.args
    ]


def _parse(path: Path) -> ast.AST:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_no_module_of_the_library_is_loaded_by_a_computed_or_finesift_name() -> None:
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        if path.relative_to(SRC).parts[0] != "testing":
            problems += dynamic_imports(path, _parse(path))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("file", "table"), [key for key in NAME_TABLES if key[1] != "table"])
def test_tables_of_module_names_stay_inside_their_package(file: str, table: str) -> None:
    names = module_tables(_parse(SRC / file))[table]
    package = NAME_TABLES[(file, table)]
    outside = [n for n in names if not (n == package or n.startswith(package + "."))]
    assert names and not outside, f"{file} {table} loads {outside} from outside {package}"
    missing = [n for n in names if not _module_exists(n)]
    assert not missing, f"{file} {table} names modules that do not exist: {missing}"


def _module_exists(name: str) -> bool:
    """A module file, or a package's ``__init__.py`` (``finesift.settings`` is a package)."""
    path = ROOT / "src" / name.replace(".", "/")
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


@pytest.mark.parametrize("file", sorted(REGISTRIES))
def test_registry_entries_point_into_their_own_package(file: str) -> None:
    targets = entry_targets(_parse(SRC / file))
    package = REGISTRIES[file]
    outside = [t for t in targets if not t.startswith(package + ".")]
    assert targets and not outside, f"{file} registers backends outside {package}: {outside}"


def test_a_planted_by_name_import_is_caught() -> None:
    planted = ast.parse(
        "import importlib\n"
        "def f(name):\n"
        "    importlib.import_module(name)\n"
        "    __import__('finesift.server.app')\n"
        "    importlib.import_module('json')\n"
    )
    problems = dynamic_imports(SRC / "kb" / "planted.py", planted)
    assert len(problems) == 2 and "computed" in problems[0] and "finesift.server.app" in problems[1]


def _contract(name_start: str) -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    return next(c for c in config["contracts"] if c["name"].startswith(name_start))


def _library_packages() -> set[str]:
    return {
        f"finesift.{p.stem}"
        for p in SRC.iterdir()
        if (p.suffix == ".py" or (p / "__init__.py").exists()) and p.stem not in UNLAYERED
    }


def test_every_package_sits_in_a_layer() -> None:
    layered = {m.strip() for layer in _contract("Layers")["layers"] for m in layer.split("|")}
    assert _library_packages() - layered == set(), "add the package to a layer in pyproject.toml"


def test_no_package_of_the_library_may_import_the_test_doubles() -> None:
    sources = set(_contract("The test doubles")["source_modules"])
    assert _library_packages() - sources == set(), "add the package to the finesift.testing contract"
