"""Shared fixtures: tiny models of each family, in diffusers and original single-file layouts."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from safetensors.torch import save_file
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from sfumato.store.db import Database
from tests.fixtures.original_layout import pipeline_to_original
from tests.fixtures.tiny_models import save_config_only, tiny_sd15, tiny_sdxl

BUILDERS = {"sd15": tiny_sd15, "sdxl": tiny_sdxl}


def _test_environment(setenv, data: Path) -> None:
    """Never the user's data directory. The suite runs on PyTorch (SFUMATO_BACKEND=torch)
    unless a test names OpenVINO or clears the variable (tests/engine/test_openvino.py, the
    CLI's and the server's OpenVINO tests, the browser tests' server): the CPU's default
    backend would convert every test's models again, in every test's own data folder."""
    setenv("SFUMATO_DATA_DIR", str(data))
    setenv("SFUMATO_BACKEND", "torch")


@pytest.fixture(scope="session", autouse=True)
def _session_environment(tmp_path_factory):
    # fixtures made once per module or session are set up before the per-test ones below
    with pytest.MonkeyPatch.context() as patch:
        _test_environment(patch.setenv, tmp_path_factory.mktemp("session-data"))
        yield


@pytest.fixture(autouse=True)
def _own_environment(tmp_path_factory, monkeypatch):
    """Each test gets an empty data directory of its own."""
    _test_environment(monkeypatch.setenv, tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, dict[str, Path]]:
    """For each family: a diffusers folder, a single file, and a config-only folder."""
    root = tmp_path_factory.mktemp("tiny-models")
    models = {}
    for arch, build in BUILDERS.items():
        pipe = build()
        folder = root / f"tiny-{arch}"
        pipe.save_pretrained(folder)
        single = root / f"tiny-{arch}.safetensors"
        save_file(pipeline_to_original(pipe), single)
        config = save_config_only(build(), root / f"tiny-{arch}-config")
        models[arch] = {"folder": folder, "single": single, "config": config}
    return models


# ---- databases: the storage and queue tests run on SQLite and on the local PostgreSQL server

POSTGRES_ADMIN_URL = os.environ.get(
    "SFUMATO_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> Iterator[str]:
    """A new, empty database of each kind; the PostgreSQL one is dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    name = f"sfumato_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as e:
        pytest.fail(
            f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL} ({e.orig}). Start it, set "
            "SFUMATO_TEST_POSTGRES, or leave these tests out with -m 'not postgres'."
        )
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def db(database_url) -> Iterator[Database]:
    database = Database(database_url)
    database.migrate()
    yield database
    database.close()
