"""Events for the users' open streams (Server-Sent Events), published from the worker thread.

In-process, as the worker is: each subscriber gets an asyncio queue on the server's event
loop, and the worker hands events over with ``call_soon_threadsafe``. A slow client loses
progress events (a newer one follows), never a job's status change.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

QUEUE_SIZE = 256


class EventBus:
    def __init__(self) -> None:
        self._subscribers: dict[int, set[asyncio.Queue]] = defaultdict(set)
        self._loops: dict[asyncio.Queue, asyncio.AbstractEventLoop] = {}
        self._lock = threading.Lock()

    @asynccontextmanager
    async def subscribe(self, user_id: int) -> AsyncIterator[asyncio.Queue]:
        queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        with self._lock:
            self._subscribers[user_id].add(queue)
            self._loops[queue] = asyncio.get_running_loop()
        try:
            yield queue
        finally:
            with self._lock:
                self._subscribers[user_id].discard(queue)
                self._loops.pop(queue, None)

    def publish(self, user_id: int, event: dict) -> None:
        """Send ``event`` to every open stream of ``user_id``; callable from any thread."""
        with self._lock:
            targets = [(q, self._loops[q]) for q in self._subscribers.get(user_id, ())]
        for queue, loop in targets:
            with contextlib.suppress(RuntimeError):  # that stream's loop has closed
                loop.call_soon_threadsafe(_offer, queue, event)


def _offer(queue: asyncio.Queue, event: dict) -> None:
    if queue.full():
        if event.get("type") == "progress":
            return
        # a status change must arrive: make room by dropping the oldest event
        queue.get_nowait()
    queue.put_nowait(event)
