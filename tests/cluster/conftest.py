"""The services a scaled-out server needs: PostgreSQL (the root conftest's), Redis and
RabbitMQ, on this machine. Without one, its tests are skipped with a sentence (failed on CI,
which has them all)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.conftest import REQUIRE_POSTGRES
from tests.fixtures.cluster import Cluster
from tests.fixtures.postgres import fresh_database

REDIS_URL = os.environ.get("SFUMATO_TEST_REDIS", "redis://127.0.0.1:6379/0")
RABBITMQ_URL = os.environ.get("SFUMATO_TEST_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672//")


def _reachable(url: str, variable: str) -> str:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=3).close()
    except OSError as e:
        reason = (
            f"{parts.scheme} is not reachable at {parts.hostname}:{parts.port} ({e.strerror}). "
            f"Start it there, or name another with {variable}=URL."
        )
        if REQUIRE_POSTGRES:
            pytest.fail(f"{reason} CI and SFUMATO_REQUIRE_POSTGRES=1 require it.")
        pytest.skip(reason)
    return url


@pytest.fixture(scope="module")
def redis_url() -> str:
    return _reachable(REDIS_URL, "SFUMATO_TEST_REDIS")


@pytest.fixture(scope="module")
def rabbitmq_url() -> str:
    return _reachable(RABBITMQ_URL, "SFUMATO_TEST_RABBITMQ")


@pytest.fixture(scope="module")
def cluster_database(postgres_admin) -> Iterator[str]:
    """A new, empty PostgreSQL database for one module's cluster, dropped afterwards."""
    with fresh_database(postgres_admin, "sfumato_cluster") as url:
        yield url


@pytest.fixture(scope="module")
def make_cluster(tmp_path_factory, cluster_database):
    """Build a cluster on a broker; everything it started is stopped after the module."""
    made: list[Cluster] = []

    def make(broker_url: str) -> Cluster:
        cluster = Cluster(tmp_path_factory.mktemp("cluster"), cluster_database, broker_url)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.stop()
