"""Events across processes: what a worker publishes reaches the streams of every API process.

Published to a fanout exchange on the broker (Redis pub/sub or a RabbitMQ fanout: kombu
speaks both); each API process relays what arrives to its own ``EventBus``, whose
subscribers are its users' open streams. Events are live news, not the record: one lost
while the broker is away is not sent again, and the job's state is read from the database.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, suppress

from kombu import Connection, Exchange, Queue

from sfumato.jobs.events import EventBus, Subscription

log = logging.getLogger(__name__)
QUIET_S = 5.0  # after a failed publish, events are dropped this long, not each one retried
EXCHANGE = Exchange("sfumato.events", type="fanout", durable=False, delivery_mode="transient")


class BrokerEvents:
    """``studio.events`` of a scaled-out server: publish to the broker, subscribe locally."""

    def __init__(self, broker_url: str) -> None:
        self.url = broker_url
        self.local = EventBus()
        self.hooks: list[Callable[[int | None, dict], None]] = []  # called on each arrival
        self._publish_lock = threading.Lock()
        self._quiet_until = 0.0  # events are dropped until then, after a failed publish
        self._connection: Connection | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()  # the relay is listening

    def subscribe(self, user_id: int) -> AbstractAsyncContextManager[Subscription]:
        return self.local.subscribe(user_id)

    def publish(self, user_id: int | None, event: dict) -> None:
        """Send ``event`` to ``user_id``'s streams in every API process; ``None`` for the
        processes themselves (a worker is free). Never raises: a lost event is logged."""
        if time.monotonic() < self._quiet_until:
            return  # the broker was away a moment ago: a job's steps do not wait for it
        body = {"user_id": user_id, "event": event}
        try:
            with self._publish_lock:
                if self._connection is None:
                    self._connection = Connection(self.url, connect_timeout=5)
                producer = self._connection.Producer(serializer="json")
                producer.publish(
                    body,
                    exchange=EXCHANGE,
                    declare=[EXCHANGE],
                    retry=True,
                    retry_policy={"max_retries": 2, "interval_start": 0.2},
                )
        except Exception as e:
            log.warning("events cannot reach the broker (%s) for now: %s", self.url, e)
            with self._publish_lock:
                self._connection = None
                self._quiet_until = time.monotonic() + QUIET_S

    def start(self) -> None:
        """Relay the broker's events to this process's streams, from a thread."""
        self._thread = threading.Thread(target=self._relay, name="sfumato-events", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with self._publish_lock:
            if self._connection is not None:
                self._connection.release()
                self._connection = None

    def _relay(self) -> None:
        while not self._stop.is_set():
            try:
                with Connection(self.url, connect_timeout=5) as connection:
                    queue = Queue(
                        f"sfumato.events.{uuid.uuid4().hex}",
                        EXCHANGE,
                        exclusive=True,
                        auto_delete=True,
                        durable=False,
                    )
                    with connection.Consumer(
                        queue, callbacks=[self._arrived], accept=["json"], no_ack=True
                    ):
                        self.ready.set()
                        while not self._stop.is_set():
                            with suppress(TimeoutError):
                                connection.drain_events(timeout=1)
            except Exception as e:
                self.ready.clear()
                log.warning("events from the workers are not arriving (%s); retrying: %s",
                            self.url, e)  # fmt: skip
                self._stop.wait(2)

    def _arrived(self, body: dict, message) -> None:
        user_id, event = body.get("user_id"), body.get("event") or {}
        for hook in self.hooks:
            try:
                hook(user_id, event)
            except Exception:
                log.exception("an event hook failed")
        if user_id is not None:
            self.local.publish(user_id, event)
