"""The OpenMP wait policy: exported by the CLI and the server before torch loads, never over the user's."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from finesift.runtime.threads import ThreadState, apply_thread_policy, thread_state
from finesift.settings import Settings

SRC = Path(__file__).resolve().parents[3] / "src"

#: A stand-in torch that reports the OpenMP variables it sees when imported, as libgomp reads them then.
FAKE_TORCH = (
    "import os\n"
    "print('at torch import:', os.environ.get('OMP_WAIT_POLICY', 'unset'),"
    " os.environ.get('OMP_NUM_THREADS', 'unset'))\n"
)
PROBE = textwrap.dedent(
    """
    import sys
    from finesift.cli.app import app

    @app.command("probe")
    def probe() -> None:
        import torch  # noqa: F401

    app(["--home", sys.argv[1], "probe"], standalone_mode=False)
    """
)


def _cli_sees(tmp_path: Path, **env: str) -> str:
    fake = tmp_path / "fake"
    (fake / "torch").mkdir(parents=True)
    (fake / "torch" / "__init__.py").write_text(FAKE_TORCH, encoding="utf-8")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "FINESIFT_"))}
    clean.update(env, PYTHONPATH=os.pathsep.join([str(fake), str(SRC)]))
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "home")],
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return next(ln for ln in result.stdout.splitlines() if ln.startswith("at torch import:"))


@pytest.mark.parametrize(
    ("env", "seen"),
    [
        ({}, "PASSIVE unset"),
        ({"OMP_WAIT_POLICY": "active"}, "active unset"),
        ({"FINESIFT_THREADS__WAIT_POLICY": "default", "FINESIFT_THREADS__COUNT": "1"}, "unset 1"),
    ],
    ids=["finesift-default", "user-policy-wins", "setting"],
)
def test_the_cli_exports_the_policy_before_torch_loads(
    tmp_path: Path, env: dict[str, str], seen: str
) -> None:
    assert _cli_sees(tmp_path, **env) == f"at torch import: {seen}"


class _Started(Exception):
    pass


def test_the_server_exports_the_policy_before_it_builds_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    import finesift.server.app
    from finesift.cli.serve import run_server

    seen = []

    def create_app(settings: Settings) -> None:
        seen.append(os.environ.get("OMP_WAIT_POLICY"))
        raise _Started

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setitem(sys.modules, "torch", None)  # as in a fresh server process
    monkeypatch.setattr(finesift.server.app, "create_app", create_app)
    with pytest.raises(_Started):
        run_server(Settings())
    assert seen == ["PASSIVE"]


def test_nothing_is_exported_once_torch_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", type(sys)("torch"))
    sys.modules["torch"].get_num_threads = lambda: 7  # type: ignore[attr-defined]
    env: dict[str, str] = {}
    state = apply_thread_policy("passive", 2, environ=env)
    assert env == {}
    assert state == ThreadState("default (spin, then sleep)", "default", 7, "default")


def test_the_doctor_line_names_policy_count_and_who_chose_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    env = {"OMP_NUM_THREADS": "4"}
    apply_thread_policy("passive", 2, environ=env)
    assert thread_state(env).line() == "threads: 4 (user), OMP_WAIT_POLICY=passive (finesift)"
