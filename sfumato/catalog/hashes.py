"""Model file hashes as the ecosystem writes them, computed once per file version.

``Model hash`` in A1111's metadata (and civitai's "AutoV2") is the first 10 hex digits of the
file's sha256. Hashing a 7 GB checkpoint takes seconds, so results are cached by path, size
and modification time in a small JSON file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


class HashCache:
    def __init__(self, cache_file: Path):
        self.cache_file = cache_file
        try:
            self._entries: dict = json.loads(cache_file.read_text())
        except (OSError, ValueError):
            self._entries = {}

    def sha256(self, path: Path) -> str:
        path = Path(path).resolve()
        stat = path.stat()
        key = str(path)
        version = [stat.st_size, stat.st_mtime_ns]
        entry = self._entries.get(key)
        if entry and entry.get("version") == version:
            return entry["sha256"]
        value = sha256_file(path)
        self._entries[key] = {"version": version, "sha256": value}
        self._save()
        return value

    def autov2(self, path: Path) -> str:
        return self.sha256(path)[:10]

    def _save(self) -> None:
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._entries, indent=1))
        os.replace(tmp, self.cache_file)
