"""BoundedPool: results in input order, at most ``workers`` tasks in flight, failures surface."""

from __future__ import annotations

import threading
import time

import pytest

from finesift.runtime.parallel import BoundedPool


def test_results_keep_input_order_and_concurrency_stays_bounded() -> None:
    pool = BoundedPool(3)
    active, peak = 0, 0
    lock = threading.Lock()

    def work(i: int, item: int) -> int:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.01 * (item % 4))
        with lock:
            active -= 1
        return item * 10

    try:
        assert pool.map(work, list(range(20))) == [i * 10 for i in range(20)]
    finally:
        pool.close()
    assert 1 < peak <= 3


def test_the_first_failure_is_raised() -> None:
    pool = BoundedPool(2)

    def work(i: int, item: int) -> int:
        if item == 3:
            raise ValueError("boom")
        return item

    try:
        with pytest.raises(ValueError, match="boom"):
            pool.map(work, list(range(8)))
    finally:
        pool.close()
