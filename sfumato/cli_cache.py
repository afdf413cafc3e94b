"""``sfumato cache``: the models converted for OpenVINO in the data folder, and cleaning up
the ones nothing loads again (gigabytes each for real models)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from sfumato.console import DataDirOption, out, user_errors

cache_app = typer.Typer(
    help="Models converted for OpenVINO (the CPU backend), kept in the data folder: list "
    "them, and remove the ones nothing loads again.",
    no_args_is_help=True,
)


def _size(size: int) -> str:
    """As disks are sold: 1.9 GB, 58 MB."""
    return f"{size / 1e9:.1f} GB" if size >= 1e8 else f"{size / 1e6:.0f} MB"


def _found(data_dir):
    from sfumato.datadir import DataDir
    from sfumato.engine.conversions import conversions

    cache = DataDir.resolve(data_dir).cache
    return cache / "openvino", conversions(cache)


def _model(conversion) -> str:
    if conversion.model is None:
        return "(not recorded)"
    lightning = f" + {conversion.lightning}" if conversion.lightning else ""
    return conversion.model + lightning


@cache_app.command("list")
def list_conversions(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """List the converted models, their size, and which ones nothing loads again.

    Current: loading its model reads it. Gone, outdated or unfinished: nothing will.
    """
    with user_errors():
        from sfumato.engine.conversions import CURRENT

        folder, found = _found(data_dir)
        if as_json:
            rows = [
                {
                    "folder": str(c.folder),
                    "state": c.state,
                    "bytes": c.bytes,
                    "model": c.model,
                    "lightning": c.lightning,
                    "dtype": c.dtype,
                }
                for c in found
            ]
            out.print_json(json.dumps(rows))
            return
        if not found:
            out.print(f"No converted models in {folder}.")
            return
        table = Table(box=None)
        table.add_column("Model file", overflow="fold")
        for column in ("dtype", "Size", "State"):
            table.add_column(column, no_wrap=True)
        for c in found:
            dtype = (c.dtype or "").removeprefix("torch.")
            table.add_row(_model(c), dtype, _size(c.bytes), c.state)
        out.print(table)
        stale = [c for c in found if c.state != CURRENT]
        total = _size(sum(c.bytes for c in found))
        out.print(f"{len(found)} in {folder}, {total}.", highlight=False)
        if stale:
            size = _size(sum(c.bytes for c in stale))
            out.print(
                f"{len(stale)} that nothing loads again ({size}): sfumato cache clean",
                highlight=False,
            )


@cache_app.command("clean")
def clean(
    everything: Annotated[
        bool,
        typer.Option(
            "--all", help="Every conversion, current ones too: made again at their next load."
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be removed; remove nothing.")
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Remove the conversions nothing loads again.

    Of deleted or changed model files, of earlier versions, of crashes; not one being made.
    """
    with user_errors():
        from sfumato.engine.conversions import CURRENT, remove

        folder, found = _found(data_dir)
        chosen = [c for c in found if everything or c.state != CURRENT]
        freed = 0
        for c in chosen:
            if dry_run:
                verb = "Would remove"
            elif remove(c):
                verb, freed = "Removed", freed + c.bytes
            else:
                out.print(f"Kept {c.folder.name}: it is being converted now.", highlight=False)
                continue
            out.print(f"{verb} {c.folder.name} ({c.state}: {_model(c)})", highlight=False)
        if not chosen:
            out.print(f"Nothing to remove in {folder}.", highlight=False)
        elif not dry_run:
            out.print(f"{_size(freed)} freed.", highlight=False)
