"""What every command shares: where output goes, how a user's mistake is shown, and the
options that pick the data and model folders."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sfumato.engine.families import FAMILIES
from sfumato.errors import SfumatoError

FAMILY_CHOICES = ", ".join(FAMILIES)  # for help texts: "sd15, sdxl, sdxl-lightning"
out = Console(soft_wrap=True)  # lines a script may parse are never cut
err = Console(stderr=True, soft_wrap=True)


@contextlib.contextmanager
def user_errors():
    """Print a user's mistake as a sentence and exit 1; never a traceback."""
    try:
        yield
    except SfumatoError as e:
        err.print(f"[bold red]Error:[/] {e.message}", highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("Stopped.")
        raise typer.Exit(130) from None


DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="SFUMATO_DATA_DIR",
        help="Where models and outputs live. Default: your platform's app-data folder.",
        show_default=False,
    ),
]


ModelsDirOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--models-dir",
        help="A folder of models (A1111, ComfyUI or plain); repeat for several. Default: "
        "$SFUMATO_MODELS (folders separated by ':'), else models/ in the data folder.",
        show_default=False,
    ),
]
