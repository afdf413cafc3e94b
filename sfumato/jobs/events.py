"""Events for the users' open streams (Server-Sent Events), published from the worker thread.

In-process, as the worker is: each subscriber gets a ``Subscription`` on the server's event
loop, and the worker hands events over with ``call_soon_threadsafe``. A slow client is never
sent a stale progress event it has not read yet (the job's newer one replaces it), and never
loses a job's status change: those all arrive, in the order they were published.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

PROGRESS = "progress"  # the one kind of event a newer one of the same job makes worthless


class Subscription:
    """One open stream's unread events, oldest first; read with ``await get()``.

    What it holds is bounded without dropping anything that matters: a job's unread progress
    event (with its preview picture, the bulk of the bytes) is replaced by that job's next
    one, which takes its place at the end; status changes ("job" events) are all kept. A job
    has a handful of those in its life (queued, running, cancel asked, finished), so even a
    client that reads nothing holds a few small dicts per job its user ran meanwhile, and the
    stream is dropped, with all of them, when the client goes away.

    Not thread-safe: it lives on its event loop; other threads reach it through
    ``EventBus.publish``.
    """

    def __init__(self) -> None:
        # each entry is a one-item list, so a superseded progress event is emptied in place
        # (O(1)) rather than searched for; empty entries are skipped when read
        self._entries: deque[list[dict | None]] = deque()
        self._unread_progress: dict[object, list[dict | None]] = {}  # job id -> its entry
        self._superseded = 0
        self._ready = asyncio.Event()

    def offer(self, event: dict) -> None:
        entry: list[dict | None] = [event]
        if event.get("type") == PROGRESS:
            older = self._unread_progress.get(event.get("job_id"))
            if older is not None:
                older[0] = None
                self._superseded += 1
            self._unread_progress[event.get("job_id")] = entry
        self._entries.append(entry)
        if self._superseded > len(self._entries) // 2:  # keep the empty entries few
            self._entries = deque(e for e in self._entries if e[0] is not None)
            self._superseded = 0
        self._ready.set()

    def get_nowait(self) -> dict:
        while self._entries:
            entry = self._entries.popleft()
            event = entry[0]
            if event is None:
                self._superseded -= 1
                continue
            if self._unread_progress.get(event.get("job_id")) is entry:
                del self._unread_progress[event.get("job_id")]
            return event
        raise asyncio.QueueEmpty

    async def get(self) -> dict:
        """The oldest unread event, waiting for one if need be. Cancelling the wait (as
        ``asyncio.wait_for`` does on a timeout) loses nothing."""
        while True:
            try:
                return self.get_nowait()
            except asyncio.QueueEmpty:
                self._ready.clear()
                await self._ready.wait()

    def qsize(self) -> int:
        return len(self._entries) - self._superseded

    def empty(self) -> bool:
        return self.qsize() == 0


class EventBus:
    def __init__(self) -> None:
        self._subscribers: dict[int, set[Subscription]] = defaultdict(set)
        self._loops: dict[Subscription, asyncio.AbstractEventLoop] = {}
        self._lock = threading.Lock()

    @asynccontextmanager
    async def subscribe(self, user_id: int) -> AsyncIterator[Subscription]:
        subscription = Subscription()
        with self._lock:
            self._subscribers[user_id].add(subscription)
            self._loops[subscription] = asyncio.get_running_loop()
        try:
            yield subscription
        finally:
            with self._lock:
                self._subscribers[user_id].discard(subscription)
                self._loops.pop(subscription, None)

    def publish(self, user_id: int, event: dict) -> None:
        """Send ``event`` to every open stream of ``user_id``; callable from any thread."""
        with self._lock:
            targets = [(s, self._loops[s]) for s in self._subscribers.get(user_id, ())]
        for subscription, loop in targets:
            with contextlib.suppress(RuntimeError):  # that stream's loop has closed
                loop.call_soon_threadsafe(subscription.offer, event)
