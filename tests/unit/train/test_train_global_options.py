"""``finesift --hub/--offline train ...`` resolves hub ids through the global options, never a default hub."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from finesift.cli.app import main


def _no_network(*args: object, **kwargs: object) -> None:
    raise AssertionError("a download was attempted")


@pytest.fixture
def no_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both hubs' download functions fail the test if called (modelscope stubbed when absent)."""
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", _no_network)
    monkeypatch.setitem(sys.modules, "modelscope", types.SimpleNamespace(snapshot_download=_no_network))


@pytest.mark.parametrize("command", ["embedding", "reranker"])
def test_train_honours_hub_and_offline(
    command: str, no_hub: None, tiny_en: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    args = [
        "finesift", "--home", str(tmp_path / "home"), "--hub", "modelscope", "--offline", "train", command,
        str(tiny_en), "--split", "test", "--model", "nobody/unknown-model", "--out", str(tmp_path / "out"),
    ]  # fmt: skip
    monkeypatch.setattr(sys, "argv", args)
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code != 0 and "Traceback" not in err
    assert "could not be downloaded from modelscope (offline mode)" in err, err
