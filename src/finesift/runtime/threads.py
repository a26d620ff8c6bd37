"""How finesift's CPU threads wait: OpenMP's wait policy and thread count, set before torch starts.

torch's CPU kernels run on an OpenMP pool (libgomp on Linux). By default an idle OpenMP thread
spins for a while before it sleeps, so every barrier between two kernels burns a core that the
tokenizer, the HTTP loop, a parser or another process needed. On a shared 2-core machine a passive
wait policy made finesift's own throughput several times higher (docs/performance/cpu-peers.md).
OpenMP reads ``OMP_WAIT_POLICY`` and ``OMP_NUM_THREADS`` once, when the runtime loads with torch,
so the command line and the server set them at start-up, before anything imports torch. A value
the user exported always wins. Library users who import torch themselves set the variables.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Literal

#: ``default`` leaves OpenMP's own behaviour (spin, then sleep).
WaitPolicy = Literal["passive", "active", "default"]
WAIT_ENV = "OMP_WAIT_POLICY"
THREADS_ENV = "OMP_NUM_THREADS"


@dataclass(frozen=True)
class ThreadState:
    """The effective policy and thread count, and who chose each (``user``, ``finesift``, ``default``)."""

    wait_policy: str
    wait_policy_source: str
    threads: int
    threads_source: str

    def line(self) -> str:
        """One line for ``doctor``: ``threads: 2 (default), OMP_WAIT_POLICY=passive (finesift)``."""
        return (
            f"threads: {self.threads} ({self.threads_source}), "
            f"{WAIT_ENV}={self.wait_policy} ({self.wait_policy_source})"
        )


_applied: dict[str, str] = {}


def apply_thread_policy(
    wait_policy: WaitPolicy,
    threads: int | None = None,
    *,
    environ: MutableMapping[str, str] | None = None,
) -> ThreadState:
    """Export the wait policy (and thread count) for OpenMP unless the user already set them.

    Does nothing once torch is loaded: OpenMP read the variables when it loaded, and a value set
    now would only mislead ``doctor`` and child processes.
    """
    env = os.environ if environ is None else environ
    if sys.modules.get("torch") is not None:
        return thread_state(env)
    if wait_policy != "default" and WAIT_ENV not in env:
        env[WAIT_ENV] = wait_policy.upper()
        _applied[WAIT_ENV] = env[WAIT_ENV]
    if threads is not None and THREADS_ENV not in env:
        env[THREADS_ENV] = str(threads)
        _applied[THREADS_ENV] = env[THREADS_ENV]
    return thread_state(env)


def _source(name: str, env: MutableMapping[str, str]) -> str:
    if name not in env:
        return "default"
    return "finesift" if _applied.get(name) == env[name] else "user"


def thread_state(environ: MutableMapping[str, str] | None = None) -> ThreadState:
    """What OpenMP runs with: the policy from the environment, the count from torch once it is loaded."""
    env = os.environ if environ is None else environ
    torch = sys.modules.get("torch")
    if torch is not None:
        threads = int(torch.get_num_threads())
    else:
        threads = int(env.get(THREADS_ENV) or (os.cpu_count() or 1))
    policy = env.get(WAIT_ENV, "default (spin, then sleep)").lower()
    return ThreadState(policy, _source(WAIT_ENV, env), threads, _source(THREADS_ENV, env))
