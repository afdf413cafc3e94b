"""``sfumato grid``: an X/Y/Z comparison grid made here, no server (``sfumato.grid``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sfumato.cli_options import with_parameters
from sfumato.console import (
    BackendOption,
    DataDirOption,
    DeviceOption,
    DtypeOption,
    ModelsDirOption,
    err,
    out,
    progress_bar,
    user_errors,
)


def _axis_option(name: str, help_text: str):
    return Annotated[str | None, typer.Option(f"--{name}", help=help_text, show_default=False)]


@with_parameters
def grid(
    prompt: Annotated[str, typer.Argument(help="What every cell shows (before the axes).")],
    x: _axis_option(
        "x",
        "The columns: NAME=VALUES, e.g. guidance=3,5,7, steps=10-30 (+10), "
        "sampler=Euler,DPM++ 2M, model=v9,v10, size=512x512,768x512, lora:NAME=0,0.5,1, "
        "prompt=red,green (Prompt S/R: the first value is replaced by each).",
    ) = None,
    y: _axis_option("y", "The rows, as --x.") = None,
    z: _axis_option("z", "One grid per value, side by side, as --x.") = None,
    matrix: Annotated[
        bool,
        typer.Option(
            "--matrix",
            help="A1111's prompt matrix: PROMPT is a base and optional parts, "
            '"a castle|at night|in fog": every combination of the parts (makes --x and --y).',
        ),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="The grid picture (.png, .jpg or .webp); each cell is written beside it "
            "(NAME-X-Y-Z.png). Default: new files in the outputs folder.",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="The model of every cell (unless an axis is model).",
            show_default=False,
        ),
    ] = None,  # fmt: skip
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing files.")] = False,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
    backend: BackendOption = None,
    data_dir: DataDirOption = None,
    models_dir: ModelsDirOption = None,
    parameters: dict | None = None,
) -> None:
    """Compare settings side by side: every cell the same request and seed, but for its axes.

    Example: sfumato grid "a castle" --x "guidance=3,5,7" --y "sampler=Euler,DPM++ 2M" -o grid.png
    """
    with user_errors():
        from sfumato.engine.loader import LoadOptions
        from sfumato.engine.request import GenerationRequest, random_seed
        from sfumato.generation import GenerationJob
        from sfumato.grid import cells, compose, grid_axes
        from sfumato.metadata.files import image_format, write_file

        prompt, axes = grid_axes([x, y, z], prompt, matrix)
        parameters = dict(parameters or {})
        if parameters.get("seed") in (None, -1):  # one seed for every cell
            parameters["seed"] = random_seed()
        base = GenerationRequest(prompt, **parameters)
        load = LoadOptions(device=device, dtype=dtype, backend=backend)
        planned = [
            (cell, GenerationJob.prepare(cell.request, model=cell.model, data_dir=data_dir,
                                         models_dirs=models_dir, load=load))
            for cell in cells(base, model, axes)
        ]  # fmt: skip
        if output is None:
            first = planned[0][1]
            output = first.outputs[0].with_name(f"grid-{first.settings.seed}.png")
        image_format(output)
        err.print(f"{len(planned)} cells · seed {parameters['seed']}", highlight=False)
        loaded: dict[Path, object] = {}
        pictures = {}
        with progress_bar("Cell {task.fields[cell]}") as progress:
            task = progress.add_task("cells", total=len(planned), cell=1)
            for number, (cell, job) in enumerate(planned, start=1):
                progress.update(task, cell=number)
                job.model = loaded.get(job.source.path) or loaded.setdefault(
                    job.source.path, job.load()
                )
                image = job.render()[0]
                i, j, k = cell.position
                path = output.with_name(f"{output.stem}-{i + 1}-{j + 1}-{k + 1}.png")
                job.save([image], [path], overwrite)
                pictures[cell.position] = image
                progress.update(task, completed=number)
        sheet = compose(pictures, axes)
        write_file(output, _encoded(sheet, image_format(output)), overwrite)
        out.print(f"Saved {output} ({len(pictures)} cells beside it)", highlight=False)


def _encoded(picture, fmt: str) -> bytes:
    import io

    buffer = io.BytesIO()
    picture.save(buffer, format=fmt)
    return buffer.getvalue()
