"""Where the server keeps picture files: behind a small interface, so that object storage can
stand in for the local folder without the rest of the server knowing."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from pathlib import Path

from sfumato.metadata.files import write_file

KEY = re.compile(r"^[a-z0-9]+(/[a-z0-9][a-z0-9._-]*)*$")  # the only keys the server makes


class FileStore(ABC):
    """Files by key ("images/7/ab12....png"); keys are made by the server, never by users."""

    @abstractmethod
    def put(self, key: str, content: bytes) -> None:
        """Store ``content`` under ``key``, whole or not at all."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The content; FileNotFoundError if there is none."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the file now; a missing file is not an error."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def size(self, key: str) -> int:
        """The file's size in bytes; 0 if there is none."""


class LocalFiles(FileStore):
    """Files in a folder of the data directory."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, key: str) -> Path:
        if not KEY.match(key) or ".." in key:
            raise ValueError(f"not a storage key: {key!r}")
        return self.root / key

    def put(self, key: str, content: bytes) -> None:
        write_file(self.path(key), content, overwrite=True)

    def get(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            return 0
