"""scripts/llamacpp_smoke.py, the check scripts/llamacpp_wheel.sh runs on every wheel it installs.

Its tiny GGUF is written by hand (standard library only: the smoke test must not need finesift or
``gguf``), so ``gguf``'s reader checks the file; the run itself needs llama-cpp-python and goes in
its own process, as in the install script, where a signal death is a failure.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "llamacpp_smoke.py"


def _smoke():
    spec = importlib.util.spec_from_file_location("llamacpp_smoke", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_hand_written_gguf_is_a_qwen3_model_gguf_reads(tmp_path: Path) -> None:
    gguf = pytest.importorskip("gguf")
    smoke = _smoke()
    smoke.write_model(tmp_path / "tiny.gguf")
    reader = gguf.GGUFReader(tmp_path / "tiny.gguf")
    shapes = {t.name: tuple(int(n) for n in t.shape) for t in reader.tensors}
    assert shapes == smoke.tensors()
    arch = reader.fields["general.architecture"]
    assert bytes(arch.parts[arch.data[0]]).decode() == "qwen3"
    assert all(t.tensor_type == gguf.GGMLQuantizationType.F32 for t in reader.tensors)


@pytest.mark.slow
def test_the_smoke_test_passes_with_the_installed_wheel() -> None:
    pytest.importorskip("llama_cpp")
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1].startswith("llama.cpp smoke test passed")
