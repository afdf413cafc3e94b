"""``sfumato cache``: real conversions of a tiny model in the test's data folder, listed and
cleaned up; the current one is kept and still loads from disk."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import torch

from sfumato.datadir import DataDir
from sfumato.engine.checkpoint import inspect_model
from sfumato.engine.conversions import RECORD, converted_folder, lock, made_from, record
from sfumato.engine.loader import LoadOptions, load_model
from tests.test_cli import run


def _converted(tiny_models, data: DataDir, name: str, like: Path | None = None):
    """A copy of the tiny SD 1.5 file named ``name``, converted into the data folder; with
    ``like``, that conversion copied under this file's key and recorded as made from it (the
    same weights convert to the same files: this is what converting it gives, in no time)."""
    data.models.mkdir(parents=True, exist_ok=True)
    single = data.models / name
    single.write_bytes(tiny_models["sd15"]["single"].read_bytes())
    options = LoadOptions(
        device="cpu",
        backend="openvino",
        cache_dir=data.cache,
        config_dir=tiny_models["sd15"]["config"],
    )
    if like is None:
        return single, options, load_model(inspect_model(single), options).backend.compiled.folder
    made = json.loads((like / RECORD).read_text())
    dtype = getattr(torch, made["made_from"]["dtype"].removeprefix("torch."))
    source = made_from(single, None, dtype)
    folder = converted_folder(data.cache, single, None, dtype)
    shutil.copytree(like, folder)
    record(folder, source, **{k: v for k, v in made.items() if k not in ("format", "made_from")})
    return single, options, folder


def _listed() -> dict[str, str]:
    result = run("cache", "list", "--json")
    assert result.exit_code == 0, result.output
    return {row["folder"]: row["state"] for row in json.loads(result.output)}


def test_cache_list_and_clean_remove_only_what_nothing_loads_again(tiny_models):
    data = DataDir.resolve()  # the test's own (conftest)
    empty = run("cache", "list")
    assert empty.exit_code == 0 and "No converted models" in empty.output

    kept_file, options, kept = _converted(tiny_models, data, "kept.safetensors")
    deleted_file, _, deleted = _converted(tiny_models, data, "deleted.safetensors", kept)
    deleted_file.unlink()
    changed_file, _, changed = _converted(tiny_models, data, "changed.safetensors", kept)
    changed_file.touch()  # a new modification time: its next load converts it again
    crashed = kept.with_name(kept.name + ".tmp1234")  # a conversion a crash stopped
    crashed.mkdir()
    (crashed / "unet.bin").write_bytes(b"\0" * 1000)
    running = deleted.with_name("f" * 20 + ".tmp5678")  # one another process is making now
    running.mkdir()

    with lock(running):
        assert _listed() == {
            str(kept): "current",
            str(deleted): "model file gone",
            str(changed): "outdated",
            str(crashed): "unfinished",
            str(running): "unfinished",
        }
        text = run("cache", "list").output
        assert "model file gone" in text and "4 that nothing loads again" in text
        assert "sfumato cache clean" in text

        dry = run("cache", "clean", "--dry-run")
        assert dry.exit_code == 0 and dry.output.count("Would remove") == 4
        assert all(p.is_dir() for p in (kept, deleted, changed, crashed, running))

        cleaned = run("cache", "clean")
        assert cleaned.exit_code == 0, cleaned.output
        assert "being converted now" in cleaned.output and "MB freed" in cleaned.output
        assert _listed() == {str(kept): "current", str(running): "unfinished"}

    # the current conversion still loads without converting again
    assert load_model(inspect_model(kept_file), options).backend.compiled.converted_s is None
    # and the changed file converts again at its next load
    again = load_model(inspect_model(changed_file), replace(options)).backend.compiled
    assert again.converted_s is not None

    everything = run("cache", "clean", "--all")
    assert everything.exit_code == 0 and not kept.exists() and not running.exists()
    assert "No converted models" in run("cache", "list").output
