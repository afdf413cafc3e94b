import pytest

from sfumato.engine.checkpoint import inspect_model
from sfumato.engine.loader import load_model


@pytest.fixture(scope="session")
def loaded(tiny_models):
    """Tiny models of each family, loaded once from their single files: arch -> LoadedModel."""
    return {
        arch: load_model(
            inspect_model(paths["single"]), config_dir=paths["config"], backend="torch"
        )
        for arch, paths in tiny_models.items()
    }
