"""The users' event streams: a client too slow to keep up loses stale progress events, never a
job's status change, and what it receives keeps the order things happened in."""

import asyncio
import threading
import time

from sfumato.jobs.events import EventBus

JOBS, STEPS = 20, 500  # 10,000 progress events: far more than a stream ever held before


def _published() -> list[dict]:
    """What the worker publishes for a user's jobs run one after the other: each job's status
    changes with its progress in between. ``n`` numbers them in publishing order."""
    events = []
    for j in range(JOBS):
        job = f"job-{j}"
        events.append({"type": "job", "job": {"id": job, "status": "queued"}})
        events.append({"type": "job", "job": {"id": job, "status": "running"}})
        for step in range(1, STEPS + 1):
            events.append({"type": "progress", "job_id": job, "step": step, "total": STEPS})
        events.append({"type": "job", "job": {"id": job, "status": "succeeded"}})
    for n, event in enumerate(events):
        event["n"] = n
    return events


def _publish_from_a_thread(bus: EventBus, events: list[dict], pause_every: int = 0) -> None:
    def publish():
        for i, event in enumerate(events):
            bus.publish(7, event)
            if pause_every and i % pause_every == 0:
                time.sleep(0.001)

    worker = threading.Thread(target=publish)
    worker.start()
    return worker


def _check(received: list[dict], published: list[dict]) -> None:
    statuses = [e for e in published if e["type"] == "job"]
    assert [e for e in received if e["type"] == "job"] == statuses  # all of them, in order
    numbers = [e["n"] for e in received]
    assert numbers == sorted(numbers)  # nothing overtakes what was published before it
    last_progress = {e["job_id"]: e for e in published if e["type"] == "progress"}
    got_progress = {e["job_id"]: e for e in received if e["type"] == "progress"}
    assert got_progress == last_progress  # each job's last step arrives: the bar reaches 100 %


def test_a_client_that_reads_nothing_during_a_flood_still_gets_every_status_change():
    published = _published()

    async def scenario():
        bus = EventBus()
        async with bus.subscribe(7) as stream:
            worker = _publish_from_a_thread(bus, published)
            await asyncio.to_thread(worker.join)  # the loop runs, the client does not read
            await asyncio.sleep(0)
            received = []
            while not stream.empty():
                received.append(await stream.get())
            return received

    received = asyncio.run(scenario())
    _check(received, published)
    # nothing was read while the worker ran: each job's progress shrank to its newest event
    assert sum(e["type"] == "progress" for e in received) == JOBS
    assert len(received) == JOBS * 4


def test_a_client_reading_slower_than_the_worker_publishes_gets_every_status_change():
    published = _published()

    async def scenario():
        bus = EventBus()
        async with bus.subscribe(7) as stream:
            worker = _publish_from_a_thread(bus, published, pause_every=50)
            received = []
            while not received or received[-1]["n"] != published[-1]["n"]:
                received.append(await stream.get())
                await asyncio.sleep(0.002)  # a slow network
            worker.join()
            return received

    received = asyncio.run(scenario())
    _check(received, published)
    assert len(received) < len(published)  # it did fall behind, and stale progress went


def test_a_wait_that_times_out_loses_no_event():
    async def scenario():
        bus = EventBus()
        async with bus.subscribe(7) as stream:
            try:
                await asyncio.wait_for(stream.get(), 0.01)
            except TimeoutError:
                pass
            else:
                raise AssertionError("nothing was published")
            threading.Thread(target=bus.publish, args=(7, {"type": "job", "n": 1})).start()
            first = await asyncio.wait_for(stream.get(), 5)
            bus.publish(8, {"type": "job", "n": 2})  # another user's
            bus.publish(7, {"type": "job", "n": 3})
            second = await asyncio.wait_for(stream.get(), 5)
            return first, second

    assert asyncio.run(scenario()) == ({"type": "job", "n": 1}, {"type": "job", "n": 3})
