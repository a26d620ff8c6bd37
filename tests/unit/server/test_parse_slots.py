"""FairSlots: per-KB queues served round robin, a bounded wait, and no slot lost to a cancelled waiter."""

from __future__ import annotations

import asyncio

from finesift.server.parse_slots import FairSlots


def test_a_freed_slot_goes_to_the_kbs_in_turn() -> None:
    async def main() -> list[str]:
        slots, order = FairSlots(1), []
        assert await slots.acquire("a", timeout=1)

        async def job(key: str) -> None:
            assert await slots.acquire(key, timeout=5)
            order.append(key)
            slots.release()

        tasks = [asyncio.create_task(job(k)) for k in ("a", "a", "a", "b", "c", "b")]
        await asyncio.sleep(0)  # all queued behind the held slot
        assert slots.waiting() == 6
        slots.release()
        await asyncio.gather(*tasks)
        return order

    assert asyncio.run(main()) == ["a", "b", "c", "a", "b", "a"]


def test_a_wait_past_the_timeout_gives_up_and_leaves_the_queue() -> None:
    async def main() -> None:
        slots = FairSlots(1)
        assert await slots.acquire("a", timeout=1)
        assert not await slots.acquire("b", timeout=0.01)
        assert slots.waiting() == 0
        slots.release()
        assert await slots.acquire("b", timeout=0.01)  # the slot came back

    asyncio.run(main())


def test_a_cancelled_waiter_does_not_keep_the_slot() -> None:
    async def main() -> None:
        slots = FairSlots(1)
        assert await slots.acquire("a", timeout=1)
        waiter = asyncio.create_task(slots.acquire("b", timeout=5))
        await asyncio.sleep(0)
        slots.release()  # granted to the waiter ...
        waiter.cancel()  # ... which goes away before it runs
        await asyncio.gather(waiter, return_exceptions=True)
        assert await slots.acquire("c", timeout=0.01)

    asyncio.run(main())
