"""llama.cpp's OpenMP threads sleep at barriers unless the user chose a wait policy."""

from __future__ import annotations

import os
import sys

import pytest

from finesift.runtime import llamacpp


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """As before llama_cpp is first imported, with no wait policy set."""
    monkeypatch.delitem(sys.modules, "llama_cpp", raising=False)
    for name in llamacpp.WAIT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # in a full test run torch (and its libgomp) is usually loaded already: pretend it is not
    monkeypatch.setattr(llamacpp, "_openmp_loaded", lambda: False)
    return monkeypatch


def test_nothing_is_set_once_openmp_is_loaded(fresh) -> None:
    fresh.setattr(llamacpp, "_openmp_loaded", lambda: True)
    with llamacpp._wait_policy():
        assert "OMP_WAIT_POLICY" not in os.environ


def test_passive_while_llama_cpp_loads_then_the_environment_is_restored(fresh) -> None:
    with llamacpp._wait_policy():
        assert os.environ["OMP_WAIT_POLICY"] == "passive"
    assert "OMP_WAIT_POLICY" not in os.environ


@pytest.mark.parametrize("name, value", [("OMP_WAIT_POLICY", "active"), ("GOMP_SPINCOUNT", "300000")])
def test_a_policy_the_user_set_is_kept(fresh, name: str, value: str) -> None:
    fresh.setenv(name, value)
    with llamacpp._wait_policy():
        assert os.environ.get("OMP_WAIT_POLICY") == (value if name == "OMP_WAIT_POLICY" else None)
    assert os.environ[name] == value


@pytest.mark.parametrize(
    "info, kind",
    [
        (b"CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | OPENMP = 1 | ", "portable (AVX2)"),
        (
            b"CPU : AVX2 = 1 | AVX512 = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 | OPENMP = 1 | ",
            "native (AVX512, AVX512_BF16, AMX_INT8)",
        ),
    ],
)
def test_build_info_names_native_or_portable(monkeypatch: pytest.MonkeyPatch, info: bytes, kind: str) -> None:
    _fake_build(monkeypatch, info)
    amx = f"; {llamacpp.AMX_WARNING}" if b"AMX_INT8 = 1" in info else ""
    assert llamacpp.build_info() == f"llama.cpp build: {kind}; OpenMP wait: passive{amx}"


def test_build_info_adds_why_the_install_script_fell_back(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    _fake_build(monkeypatch, b"CPU : AVX2 = 1 | OPENMP = 1 | ")
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    note = "native not usable: its smoke test died with SIGILL"
    (tmp_path / llamacpp.BUILD_RECORD).write_text(f"build: portable\nflags: -DGGML_AVX2=ON\nnote: {note}\n")
    assert llamacpp.build_info() == f"llama.cpp build: portable (AVX2); OpenMP wait: passive; {note}"


def _fake_build(monkeypatch: pytest.MonkeyPatch, info: bytes) -> None:
    class FakeLlamaCpp:
        @staticmethod
        def llama_print_system_info() -> bytes:
            return info

    monkeypatch.setattr(llamacpp, "import_llama_cpp", FakeLlamaCpp)
    monkeypatch.setitem(llamacpp._wait, "policy", "passive")
    monkeypatch.setattr(sys, "prefix", "/nonexistent")
