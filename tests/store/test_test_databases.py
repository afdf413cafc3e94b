"""The README's test command on a machine without PostgreSQL: the tests that need it are
skipped with a sentence saying how to run them, except on CI, which has the server and so
must never skip them quietly."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
NOWHERE = "postgresql+psycopg://postgres@127.0.0.1:1/postgres"  # loopback, nothing listens


def _pytest_without_postgres(**env: str) -> subprocess.CompletedProcess:
    environment = {
        k: v for k, v in os.environ.items() if k not in ("CI", "SFUMATO_REQUIRE_POSTGRES")
    }
    environment |= {"SFUMATO_TEST_POSTGRES": NOWHERE, **env}
    return subprocess.run(
        # one test, on both databases; -p no:cacheprovider: no .pytest_cache written
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--durations=0"]
        + ["tests/store/test_db.py::test_migrating_again_changes_nothing"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_without_the_server_its_tests_are_skipped_with_a_sentence():
    run = _pytest_without_postgres()
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed, 1 skipped" in run.stdout
    assert f"PostgreSQL is not reachable at {NOWHERE}" in run.stdout
    assert "SFUMATO_TEST_POSTGRES=" in run.stdout  # and how to run them


def test_on_ci_a_missing_server_fails_the_run():
    for env in ({"CI": "true"}, {"SFUMATO_REQUIRE_POSTGRES": "1"}):
        run = _pytest_without_postgres(**env)
        assert run.returncode == 1, run.stdout + run.stderr
        assert "1 passed, 1 error" in run.stdout
        assert "require them" in run.stdout
