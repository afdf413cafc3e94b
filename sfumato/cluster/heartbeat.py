"""A worker's heartbeat, written by a small process of its own beside the worker.

A thread would do, but converting or compiling a model can hold Python's interpreter lock
for long stretches (OpenVINO's conversion does, for minutes on a large model): a heartbeat
thread would fall silent, and a busy worker would be taken for dead and its job run twice.
This process beats while its parent lives; when the parent is killed, it notices within one
beat and stops, and the worker's heartbeat expires.

Run as ``python -m sfumato.cluster.heartbeat NAME PARENT_PID DEVICE QUEUE``; it imports neither
torch nor the engine, so it starts in a moment and takes little memory.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time

from sqlalchemy import create_engine, update
from sqlalchemy.orm import sessionmaker

from sfumato.cluster import registry
from sfumato.store.tables import Worker, utcnow

log = logging.getLogger(__name__)


def start(database_url: str, name: str, device: str, queue: str) -> subprocess.Popen:
    """The heartbeat process of this process, worker ``name``."""
    arguments = [name, str(os.getpid()), device, queue]
    # the URL by the environment, not the command line: ps shows command lines to everyone
    env = dict(os.environ, SFUMATO_DATABASE_URL=database_url)
    return subprocess.Popen(
        [sys.executable, "-m", "sfumato.cluster.heartbeat", *arguments], env=env
    )


def beat_while(url: str, name: str, parent: int, device: str, queue: str, every_s: float) -> None:
    sessions = sessionmaker(create_engine(url, pool_pre_ping=True))
    host = socket.gethostname()
    while os.getppid() == parent:
        try:
            with sessions.begin() as session:
                beat = update(Worker).where(Worker.name == name).values(heartbeat_at=utcnow())
                if not session.execute(beat).rowcount:
                    # taken for dead while the database was away: back in the list (what it
                    # held was handed to others meanwhile)
                    registry.register(session, name, host, parent, device, queue)
        except Exception as e:  # the database is away a moment: the next beat may reach it
            log.warning("heartbeat of %s not written: %s", name, str(e).splitlines()[0][:200])
        time.sleep(every_s)


if __name__ == "__main__":
    from sfumato.cluster import HEARTBEAT_S

    name, parent, device, queue = sys.argv[1:5]
    beat_while(os.environ["SFUMATO_DATABASE_URL"], name, int(parent), device, queue, HEARTBEAT_S)
