"""The cross-request batch queue: order, batching by token budget, admission, deadlines, drain."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Hashable

import pytest

from finesift.errors import BackendError, DeadlineExceeded, Overloaded
from finesift.runtime.queue import BatchQueue, QueueLimits


class Recorder:
    """A model function that squares numbers and records every call."""

    def __init__(self, delay: float = 0.0, gate: threading.Event | None = None) -> None:
        self.calls: list[tuple[Hashable, list[int]]] = []
        self.delay = delay
        self.gate = gate

    def __call__(self, key: Hashable, items: list[int]) -> list[int]:
        if self.gate is not None:
            self.gate.wait(5)
        time.sleep(self.delay)
        self.calls.append((key, list(items)))
        return [x * x for x in items]


def run(coro):
    return asyncio.run(coro)


def test_results_come_back_in_order_for_each_request():
    async def main():
        model = Recorder()
        queue = BatchQueue(model, QueueLimits(token_budget=5, max_items=3))
        queue.start()
        results = await asyncio.gather(
            *(queue.submit(None, list(range(i, i + 7)), [1] * 7) for i in range(5))
        )
        await queue.close(1)
        return results, model

    results, model = run(main())
    assert results == [[x * x for x in range(i, i + 7)] for i in range(5)]
    assert all(len(items) <= 3 for _, items in model.calls)


def test_concurrent_requests_share_model_calls_within_the_token_budget():
    async def main():
        gate = threading.Event()
        model = Recorder(gate=gate)
        queue = BatchQueue(model, QueueLimits(token_budget=10, max_items=100))
        queue.start()
        first = asyncio.ensure_future(
            queue.submit(None, [0], [1])
        )  # occupies the worker until the gate opens
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(queue.submit(None, [i, i], [2, 2])) for i in range(1, 6)]
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.gather(first, *rest)
        await queue.close(1)
        return model

    model = run(main())
    # 5 requests of 4 tokens queued while the first ran: two calls of 10 and 10 tokens... at most 2 per call.
    later = model.calls[1:]
    assert sum(len(items) for _, items in later) == 10
    assert len(later) < 5, "queued requests must be batched together"
    assert all(2 * len(items) <= 10 for _, items in later)


def test_an_item_larger_than_the_budget_runs_alone():
    async def main():
        model = Recorder()
        queue = BatchQueue(model, QueueLimits(token_budget=4))
        queue.start()
        out = await queue.submit(None, [1, 2, 3], [10, 1, 1])
        await queue.close(1)
        return out, model

    out, model = run(main())
    assert out == [1, 4, 9]
    assert model.calls[0][1] == [1]


def test_requests_with_different_keys_never_share_a_call():
    async def main():
        gate = threading.Event()
        model = Recorder(gate=gate)
        queue = BatchQueue(model, QueueLimits())
        queue.start()
        tasks = [asyncio.ensure_future(queue.submit(key, [i], [1])) for i, key in enumerate("aabba")]
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.gather(*tasks)
        await queue.close(1)
        return model

    model = run(main())
    for key, items in model.calls:
        assert all("aabba"[i] == key for i in items)


def test_full_queue_is_overloaded_and_recovers():
    async def main():
        gate = threading.Event()
        queue = BatchQueue(Recorder(gate=gate), QueueLimits(max_jobs=2))
        queue.start()
        admitted = [asyncio.ensure_future(queue.submit(None, [i], [1])) for i in range(2)]
        await asyncio.sleep(0.02)
        with pytest.raises(Overloaded, match="full"):
            await queue.submit(None, [9], [1])
        gate.set()
        assert await asyncio.gather(*admitted) == [[0], [1]]
        assert await queue.submit(None, [3], [1]) == [9]
        await queue.close(1)

    run(main())


def test_deadline_exceeded_drops_the_request():
    async def main():
        gate = threading.Event()
        model = Recorder(gate=gate)
        queue = BatchQueue(model, QueueLimits(timeout=0.1))
        queue.start()
        blocker = asyncio.ensure_future(queue.submit(None, [1], [1]))
        await asyncio.sleep(0.01)
        with pytest.raises(DeadlineExceeded, match="did not finish"):
            await queue.submit(None, [2, 3], [1, 1])
        assert queue.depth == 0, "both requests gave up; neither counts against admission"
        gate.set()
        with pytest.raises(DeadlineExceeded):
            await blocker  # its own deadline passed while the gate was closed
        await queue.close(1)
        return model

    model = run(main())
    assert all(2 not in items for _, items in model.calls), "a request that gave up is not computed"


def test_model_failure_fails_its_batch_and_the_queue_goes_on():
    calls = []

    def flaky(key, items):
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("CUDA error: device-side assert")
        return items

    async def main():
        queue = BatchQueue(flaky, QueueLimits(), name="embedding")
        queue.start()
        with pytest.raises(BackendError, match="embedding model failed: RuntimeError"):
            await queue.submit(None, [1], [1])
        assert await queue.submit(None, [2], [1]) == [2]
        await queue.close(1)

    run(main())


def test_close_finishes_admitted_work_then_refuses():
    async def main():
        queue = BatchQueue(Recorder(delay=0.05), QueueLimits(token_budget=2, max_items=2))
        queue.start()
        tasks = [asyncio.ensure_future(queue.submit(None, [i, i + 1, i + 2], [1, 1, 1])) for i in range(4)]
        await asyncio.sleep(0.01)
        await queue.close(5)
        results = await asyncio.gather(*tasks)
        with pytest.raises(Overloaded, match="not accepting"):
            await queue.submit(None, [1], [1])
        return results

    assert run(main()) == [[i * i, (i + 1) ** 2, (i + 2) ** 2] for i in range(4)]


def test_close_timeout_fails_what_is_left():
    async def main():
        gate = threading.Event()
        queue = BatchQueue(Recorder(gate=gate), QueueLimits())
        queue.start()
        task = asyncio.ensure_future(queue.submit(None, [1], [1]))
        await asyncio.sleep(0.01)
        await queue.close(0.05)
        gate.set()
        with pytest.raises(Overloaded, match="shut down"):
            await task

    run(main())


def test_empty_submit_and_mismatched_costs():
    async def main():
        queue = BatchQueue(Recorder(), QueueLimits())
        queue.start()
        assert await queue.submit(None, [], []) == []
        with pytest.raises(ValueError):
            await queue.submit(None, [1], [])
        await queue.close(1)

    run(main())
