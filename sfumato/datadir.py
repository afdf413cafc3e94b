"""The data directory: models, outputs and (later) the database, in one place per user.

Chosen by ``--data-dir``, else the ``SFUMATO_DATA_DIR`` environment variable, else the
platform's place for application data (``~/.local/share/sfumato`` on Linux,
``~/Library/Application Support/sfumato`` on macOS, ``%LOCALAPPDATA%\\sfumato`` on Windows).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from platformdirs import user_data_path

ENV_VAR = "SFUMATO_DATA_DIR"
MODELS_ENV_VAR = "SFUMATO_MODELS"  # model folders, separated like PATH (":" or ";" on Windows)


@dataclass(frozen=True)
class DataDir:
    root: Path

    @classmethod
    def resolve(cls, explicit: str | Path | None = None) -> DataDir:
        chosen = explicit or os.environ.get(ENV_VAR) or user_data_path("sfumato", appauthor=False)
        return cls(Path(chosen).expanduser().resolve())

    @property
    def models(self) -> Path:
        return self.root / "models"

    def model_dirs(self, explicit: list[Path] | None = None) -> list[Path]:
        """The folders scanned for models: ``explicit`` (--models-dir), else $SFUMATO_MODELS,
        else ``models/`` in the data directory."""
        if explicit:
            return [Path(p).expanduser() for p in explicit]
        if os.environ.get(MODELS_ENV_VAR):
            return [Path(p).expanduser() for p in os.environ[MODELS_ENV_VAR].split(os.pathsep) if p]
        return [self.models]

    @property
    def hashes(self) -> Path:
        return self.cache / "hashes.json"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def wildcards(self) -> Path:
        """``__name__`` in a prompt is a line of ``wildcards/name.txt`` (``variations.py``)."""
        return self.root / "wildcards"

    def new_outputs(
        self, seeds: list[int], suffix: str = ".png", today: date | None = None
    ) -> list[Path]:
        """outputs/YYYY-MM-DD/NNNNN-SEED.png, one per seed, numbered after those already there."""
        folder = self.outputs / (today or date.today()).isoformat()
        taken = (
            [int(m.group(1)) for p in folder.glob("*") if (m := re.match(r"(\d{5})-", p.name))]
            if folder.is_dir()
            else []
        )
        first = max(taken, default=-1) + 1
        return [folder / f"{first + i:05d}-{seed}{suffix}" for i, seed in enumerate(seeds)]
