"""Model file hashes as the ecosystem writes them, computed once per file version.

- ``sha256``: of the whole file; civitai and Hugging Face list it.
- ``autov2``: its first 10 hex digits: A1111's ``Model hash`` and civitai's "AutoV2".
- ``tensor_sha256``: of a safetensors file's data after its header, so editing the metadata does
  not change it (sd-scripts' "addnet" hash); its first 12 hex digits are the LoRA hash A1111
  writes in ``Lora hashes``.

Hashing a 7 GB checkpoint takes seconds, so results are cached by path, size and modification
time in a small JSON file: a rescan of a big folder reads no weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

CHUNK = 1 << 20


def _sha256(path: Path, skip: int = 0) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(skip)
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    return _sha256(path)


def safetensors_header_size(path: Path) -> int:
    """Bytes before the tensor data: the 8-byte length, then the JSON header."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
    return 8 + length


class HashCache:
    def __init__(self, cache_file: Path):
        self.cache_file = cache_file
        try:
            self._entries: dict = json.loads(cache_file.read_text())
        except (OSError, ValueError):
            self._entries = {}

    def _cached(self, path: Path, kind: str, compute) -> str:
        path = Path(path).resolve()
        stat = path.stat()
        key = str(path)
        version = [stat.st_size, stat.st_mtime_ns]
        entry = self._entries.get(key)
        if not entry or entry.get("version") != version:
            entry = self._entries[key] = {"version": version}
        if kind not in entry:
            entry[kind] = compute(path)
            self._save()
        return entry[kind]

    def known(self, path: Path, kind: str = "sha256") -> str | None:
        """The hash if it was computed for this version of the file, else None (without
        computing it: a listing of 100 checkpoints must not read 500 GB)."""
        try:
            path = Path(path).resolve()
            stat = path.stat()
        except OSError:
            return None
        entry = self._entries.get(str(path))
        if not entry or entry.get("version") != [stat.st_size, stat.st_mtime_ns]:
            return None
        return entry.get(kind)

    def sha256(self, path: Path) -> str:
        return self._cached(path, "sha256", _sha256)

    def autov2(self, path: Path) -> str:
        return self.sha256(path)[:10]

    def tensor_sha256(self, path: Path) -> str:
        """sha256 of the data after a safetensors header; of the whole file for other formats."""
        if Path(path).suffix.lower() != ".safetensors":
            return self.sha256(path)
        return self._cached(path, "tensor_sha256", lambda p: _sha256(p, safetensors_header_size(p)))

    def lora_hash(self, path: Path) -> str:
        """The short hash A1111 writes for a LoRA in ``Lora hashes``."""
        return self.tensor_sha256(path)[:12]

    def _save(self) -> None:
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._entries, indent=1))
        os.replace(tmp, self.cache_file)
