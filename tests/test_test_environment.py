"""The suite never touches the user's own data folder, even from fixtures made once per
module, which are set up before the per-test ones (tests/conftest.py)."""

from pathlib import Path

import pytest
import torch
from platformdirs import user_data_path

from sfumato.datadir import DataDir
from sfumato.engine.backends import check_backend

USERS = Path(user_data_path("sfumato", appauthor=False)).expanduser().resolve()


@pytest.fixture(scope="module")
def module_data_dir() -> Path:
    return DataDir.resolve().root


def test_a_module_fixture_gets_a_data_folder_of_the_suites_own(module_data_dir):
    assert module_data_dir != USERS
    assert module_data_dir != DataDir.resolve().root  # and each test has its own


def test_the_suite_runs_on_pytorch_unless_a_test_says_otherwise():
    assert check_backend(None, torch.device("cpu")) == "torch"
