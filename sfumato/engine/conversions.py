"""Models converted for OpenVINO, kept on disk (``cache/openvino/`` in the data folder): where
each model's conversion lies, what it was made from, and which ones nothing loads again.

A conversion's folder is named by a key of what it is made from: the model file (its path,
modification time and size), the Lightning file, the dtype, OpenVINO's version and what
sfumato converts (``FORMAT``). A replaced model file, another OpenVINO or another format gives
a new key. The old conversion is removed when the new one is made (``drop_replaced``); those
of deleted model files, and conversions a crash left unfinished, by ``sfumato cache clean``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from filelock import FileLock, Timeout

log = logging.getLogger(__name__)
# what a conversion holds, part of its key: 2 added DeepCache's features and shallow network
FORMAT = 2
RECORD = "sfumato.json"  # what a conversion is made from, written last

# the states of a conversion on disk
CURRENT = "current"  # a load of its model reads it
MODEL_GONE = "model file gone"
OUTDATED = "outdated"  # its model file changed since, or another OpenVINO or sfumato made it
UNFINISHED = "unfinished"  # a conversion that stopped half-way (a crash)


def made_from(source_path: Path, lightning: Path | None, dtype: torch.dtype | str) -> dict:
    """The files and dtype (a torch dtype, or ``int8``) a conversion is made from."""
    return {
        "model": str(Path(source_path).resolve()),
        "lightning": str(Path(lightning).resolve()) if lightning else None,
        "dtype": str(dtype),
    }


def _key(source: dict) -> str:
    import openvino as ov

    described = [str(ov.__version__), f"format {FORMAT}", source["dtype"]]
    for path in (source["model"], source["lightning"]):
        if path is not None:
            stat = Path(path).stat()
            described += [path, str(stat.st_mtime_ns), str(stat.st_size)]
    return hashlib.sha256("\n".join(described).encode()).hexdigest()[:20]


def converted_folder(
    cache: Path, source_path: Path, lightning: Path | None, dtype: torch.dtype | str
) -> Path:
    """Where a model's converted form lies in ``cache`` (the data folder's cache)."""
    return cache / "openvino" / _key(made_from(source_path, lightning, dtype))


def is_converted(folder: Path) -> bool:
    return (folder / RECORD).is_file()


def lock(folder: Path) -> FileLock:
    """Held while ``folder``'s conversion is made: a second process loading the same model
    waits for it and reads it, rather than converting too."""
    return FileLock(folder.with_name(folder.name.split(".")[0] + ".lock"))


def partial_folder(folder: Path) -> Path:
    """A new folder beside ``folder`` to convert into: moved in whole once written, so a
    crash leaves no half-written conversion under the key."""
    return Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))


def record(folder: Path, source: dict, **facts) -> None:
    facts |= {"format": FORMAT, "made_from": source}
    (folder / RECORD).write_text(json.dumps(facts))


def _failure_note(folder: Path) -> Path:
    return folder.with_name(folder.name + ".failed")


def failed_before(folder: Path) -> str | None:
    """Why this model's conversion failed, if it did (the same file: a replaced one is tried
    again)."""
    note = _failure_note(folder)
    return note.read_text() if note.is_file() else None


def note_failure(folder: Path, message: str | None) -> None:
    """Note why the conversion into ``folder`` failed (None: it succeeded, clear the note)."""
    if message is None:
        _failure_note(folder).unlink(missing_ok=True)
    else:
        _failure_note(folder).write_text(message)


def drop_replaced(folder: Path, source: dict) -> None:
    """Remove the conversions of earlier versions of the same model file (same path, dtype
    and Lightning file; another modification time, OpenVINO or format): nothing loads them
    again, and each is gigabytes."""
    for other in folder.parent.glob(f"*/{RECORD}"):
        if other.parent == folder:
            continue
        with contextlib.suppress(OSError, ValueError):
            if json.loads(other.read_text()).get("made_from") == source:
                log.info("Removing the conversion of a replaced model file: %s", other.parent)
                shutil.rmtree(other.parent, ignore_errors=True)


@dataclass
class Conversion:
    """One model's conversion on disk."""

    folder: Path
    state: str  # CURRENT, MODEL_GONE, OUTDATED or UNFINISHED
    bytes: int
    model: str | None = None  # the model file it was made from (None: not recorded)
    lightning: str | None = None
    dtype: str | None = None


def conversions(cache: Path) -> list[Conversion]:
    """Every conversion in ``cache`` (the data folder's cache), largest first."""
    root = cache / "openvino"
    found = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if folder.is_dir():
            source = _source(folder)
            found.append(Conversion(folder, _state(folder, source), _bytes(folder), **source))
    return sorted(found, key=lambda c: -c.bytes)


def _bytes(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):  # removed meanwhile (a clean-up, a rename)
            total += path.stat().st_size if path.is_file() else 0
    return total


def _source(folder: Path) -> dict:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        source = json.loads((folder / RECORD).read_text())["made_from"]
        return {key: source[key] for key in ("model", "lightning", "dtype")}
    return {}


def _state(folder: Path, source: dict) -> str:
    if not is_converted(folder):
        return UNFINISHED
    if not source:  # an earlier sfumato's, which recorded less
        return OUTDATED
    if any(p is not None and not Path(p).exists() for p in (source["model"], source["lightning"])):
        return MODEL_GONE
    return CURRENT if _key(source) == folder.name else OUTDATED


def remove(conversion: Conversion) -> bool:
    """Remove a conversion from disk; False when it is being made right now (its lock is
    held: an unfinished folder of a running conversion)."""
    try:
        with lock(conversion.folder).acquire(timeout=0):
            shutil.rmtree(conversion.folder, ignore_errors=True)
    except Timeout:
        return False
    return True
