"""The generated reference pages match what their scripts write now, so they cannot drift from the code."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["gen_settings_docs", "gen_cli_docs"])
def test_generated_page_is_up_to_date(name: str) -> None:
    script = _script(name)
    committed = script.PAGE.read_text(encoding="utf-8")
    assert committed == script.render(), (
        f"{script.PAGE.relative_to(ROOT)} is out of date; regenerate it: python scripts/{name}.py"
    )


def test_settings_page_names_every_field_with_its_env_var() -> None:
    from finesift.settings import Settings

    page = (ROOT / "docs" / "reference" / "settings.md").read_text(encoding="utf-8")
    for section, field in Settings.model_fields.items():
        annotation = field.annotation
        fields = getattr(annotation, "model_fields", None)
        if fields is None:
            assert f"`FINESIFT_{section.upper()}`" in page
            continue
        for name in fields:
            assert f"`FINESIFT_{section.upper()}__{name.upper()}`" in page


def test_generators_do_not_import_torch() -> None:
    scripts = str(ROOT / "scripts")
    code = (
        "import sys, importlib.util\n"
        "for name in ('gen_settings_docs', 'gen_cli_docs'):\n"
        f"    spec = importlib.util.spec_from_file_location(name, {scripts!r} + f'/{{name}}.py')\n"
        "    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); m.render()\n"
        "assert 'torch' not in sys.modules, 'a docs generator imported torch'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_docs_name_no_development_machine_paths() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    pattern = re.compile(r"(?<![\w.~])/(?:work|root|home|Users)/")
    found = [
        f"{page.relative_to(ROOT)}:{number}: {line.strip()}"
        for page in pages
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not found, "use relative or placeholder paths (/path/to/..., $SHARED):\n" + "\n".join(found)
