"""Shared fixtures: tiny models of each family, in diffusers and original single-file layouts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import OperationalError

from sfumato.store.db import Database
from tests.fixtures.postgres import fresh_database


def _test_environment(setenv, data: Path) -> None:
    """Never the user's data directory. The suite runs on PyTorch (SFUMATO_BACKEND=torch)
    unless a test names OpenVINO or clears the variable (tests/engine/test_openvino.py, the
    CLI's and the server's OpenVINO tests, the browser tests' server): the CPU's default
    backend would convert every test's models again, in every test's own data folder. Servers
    start cold (SFUMATO_WARM_UP=0) unless a test asks for the warm-up (tests/jobs/test_warm_up.py):
    it would load the default model in every test's server, and hold its first job back."""
    setenv("SFUMATO_DATA_DIR", str(data))
    setenv("SFUMATO_BACKEND", "torch")
    setenv("SFUMATO_WARM_UP", "0")


@pytest.fixture(scope="session", autouse=True)
def _session_environment(tmp_path_factory):
    # fixtures made once per module or session are set up before the per-test ones below
    with pytest.MonkeyPatch.context() as patch:
        _test_environment(patch.setenv, tmp_path_factory.mktemp("session-data"))
        yield


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing():
    """argon2 at RFC 9106's setting costs 0.1-0.2 s of CPU a hash here, and the suite signs up
    and logs in hundreds of times; the tests check what is done with a hash, not what it
    costs, so in this process it is argon2id at its lowest cost. A server in a process of
    its own (tests/fixtures/served.py) and the CLI run in one keep the real setting."""
    from argon2 import PasswordHasher

    from sfumato import accounts

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(accounts, "_hasher", cheap)
        patch.setattr(accounts, "_DUMMY_HASH", cheap.hash("not a password of anyone"))
        yield


@pytest.fixture(autouse=True)
def _own_environment(tmp_path_factory, monkeypatch):
    """Each test gets an empty data directory of its own."""
    _test_environment(monkeypatch.setenv, tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, dict[str, Path]]:
    """For each family: a diffusers folder, a single file, and a config-only folder."""
    # imported here, not at the top: diffusers takes seconds to import, and the database
    # tests (tests/store/test_test_databases.py runs some in a new process) need none of it
    from safetensors.torch import save_file

    from tests.fixtures.original_layout import pipeline_to_original
    from tests.fixtures.tiny_models import save_config_only, tiny_sd15, tiny_sdxl

    root = tmp_path_factory.mktemp("tiny-models")
    models = {}
    for arch, build in {"sd15": tiny_sd15, "sdxl": tiny_sdxl}.items():
        pipe = build()
        folder = root / f"tiny-{arch}"
        pipe.save_pretrained(folder)
        single = root / f"tiny-{arch}.safetensors"
        save_file(pipeline_to_original(pipe), single)
        config = save_config_only(build(), root / f"tiny-{arch}-config")
        models[arch] = {"folder": folder, "single": single, "config": config}
    return models


@pytest.fixture(scope="session")
def openvino_cache(tmp_path_factory) -> Path:
    """A cache folder shared by the whole run, for the tests that need a model on OpenVINO but
    are not about its conversion: each model is converted (5-25 s of CPU each here, int8 the
    most) once, then read. A conversion's folder is keyed by its model file, dtype and
    OpenVINO's version (sfumato/engine/conversions.py) and nothing in it changes once made, so
    a test reading it gets what its own conversion would have made. Tests about converting
    (that it happens, once, what it leaves on disk, failures, replaced files) keep a folder of
    their own: tests/engine/test_openvino.py and test_int8.py."""
    return tmp_path_factory.mktemp("openvino-cache")


# ---- databases: the storage and queue tests run on SQLite and on the local PostgreSQL server

POSTGRES_ADMIN_URL = os.environ.get(
    "SFUMATO_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# CI has the server, so there a missing one is a failure, never a quiet skip; .ci/run sets the
# second variable too, for CI systems that do not set CI
REQUIRE_POSTGRES = any(
    os.environ.get(name, "").lower() in ("1", "true", "yes")
    for name in ("CI", "SFUMATO_REQUIRE_POSTGRES")
)


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine]:
    """The server's admin connection, tried once for the whole run: without the server, the
    tests that need it are skipped with a sentence saying how to run them (failed on CI)."""
    # a host that drops packets would otherwise hold each test for the system's TCP timeout
    admin = create_engine(
        POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )
    try:
        with admin.connect():
            pass
    except OperationalError as e:
        admin.dispose()
        why = str(e.orig).strip().splitlines()[0]
        reason = (
            f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL} ({why}). To run the tests "
            "on it, start it there (user postgres, trust authentication), or name another with "
            "SFUMATO_TEST_POSTGRES=postgresql+psycopg://USER@HOST:PORT/DB."
        )
        if REQUIRE_POSTGRES:
            pytest.fail(f"{reason} CI and SFUMATO_REQUIRE_POSTGRES=1 require them.")
        pytest.skip(reason)
    yield admin
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> Iterator[str]:
    """A new, empty database of each kind; the PostgreSQL one is dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    with fresh_database(request.getfixturevalue("postgres_admin")) as url:
        yield url


@pytest.fixture
def db(database_url) -> Iterator[Database]:
    database = Database(database_url)
    database.migrate()
    yield database
    database.close()
