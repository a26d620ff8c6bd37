"""An append-only JSONL journal: one line per finished synthesis job, so a re-run continues.

The first line records the run's parameters; a re-run with different ones is refused (its jobs
would not be the same). A line cut short by a crash (kill -9 mid-write) is dropped on reopening,
and the file is truncated to the last whole line before anything new is appended.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from finesift.errors import InvalidRequest

KIND = "finesift-synth-journal"
VERSION = 1


class Journal:
    """Records of finished jobs by key; ``append`` is thread-safe and flushed line by line."""

    def __init__(self, path: Path, params: dict[str, Any]) -> None:
        self.path = path
        self.records: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        header = {"journal": KIND, "version": VERSION, "params": params}
        if path.exists():
            self._load(header)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(header, ensure_ascii=False) + "\n", encoding="utf-8")
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - held open until close()

    def _load(self, header: dict[str, Any]) -> None:
        data = self.path.read_bytes()
        whole = data[: data.rfind(b"\n") + 1]
        lines = whole.decode("utf-8").splitlines()
        if not lines:
            raise InvalidRequest(f"{self.path} is empty; delete it to start over")
        first = json.loads(lines[0])
        if first.get("journal") != KIND:
            raise InvalidRequest(f"{self.path} is not a finesift synth journal; use another --out")
        if first.get("params") != header["params"]:
            changed = sorted(
                k for k in {*first.get("params", {}), *header["params"]}
                if first.get("params", {}).get(k) != header["params"].get(k)
            )  # fmt: skip
            raise InvalidRequest(
                f"{self.path.parent} holds a run with other parameters ({', '.join(changed)}); "
                "re-run with the same options to resume, or choose another --out"
            )
        for line in lines[1:]:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line torn by a crash and completed by nothing: the job runs again
            self.records[record["key"]] = record
        if len(whole) != len(data):
            with open(self.path, "r+b") as fh:
                fh.truncate(len(whole))

    def done(self, key: str) -> bool:
        return key in self.records

    def append(self, record: dict[str, Any]) -> None:
        """Write one finished job (must carry ``key``)."""
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            self._fh.write(line)
            self._fh.flush()
            self.records[record["key"]] = record

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
