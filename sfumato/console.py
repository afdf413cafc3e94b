"""What every command shares: where output goes, how a user's mistake is shown, and the
options that pick the data and model folders."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sfumato.engine.families import FAMILIES
from sfumato.errors import SfumatoError

FAMILY_CHOICES = ", ".join(FAMILIES)  # for help texts: "sd15, sdxl, sdxl-lightning"
out = Console(soft_wrap=True)  # lines a script may parse are never cut
err = Console(stderr=True, soft_wrap=True)


def progress_bar(label: str) -> Progress:
    """A progress bar on stderr, gone when done: the label, the bar, N/M, the time so far."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


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


# how a model is loaded, the same for every command that loads one
DeviceOption = Annotated[
    str,
    typer.Option(
        "--device", help="auto, cpu, cuda, cuda:N or mps.", rich_help_panel="Model loading"
    ),
]
DtypeOption = Annotated[
    str,
    typer.Option(
        "--dtype",
        help="auto (fp16 on GPUs; bf16 on CPUs with native bf16, else fp32), fp32, fp16, "
        "bf16, or int8: the UNet quantized on OpenVINO, faster on CPUs with VNNI or AMX "
        "(quantized once per model, minutes; needs pip install nncf).",
        rich_help_panel="Model loading",
    ),
]
BackendOption = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="auto (OpenVINO on the CPU, else torch), torch or openvino: OpenVINO runs the "
        "UNet and VAE decoder faster on the CPU (the model is converted once, then "
        "cached). Default: SFUMATO_BACKEND, else auto.",
        rich_help_panel="Model loading",
    ),
]


# scale-out (docs/scaling.md): the same for `serve` and `worker`
BrokerOption = Annotated[
    str | None,
    typer.Option(
        "--broker",
        envvar="SFUMATO_BROKER_URL",
        help="The Celery broker: redis://HOST:6379/0 or amqp://USER:PASSWORD@HOST:5672//.",
        show_default=False,
    ),
]
FilesDirOption = Annotated[
    Path | None,
    typer.Option(
        "--files-dir",
        envvar="SFUMATO_FILES_DIR",
        help="Where pictures and uploads are kept: a folder every API process and worker "
        "mounts. Default: library/ in the data folder.",
        show_default=False,
    ),
]
