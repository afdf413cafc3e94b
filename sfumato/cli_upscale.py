"""``sfumato upscale``: a picture file made larger here, no server (``sfumato/upscale``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sfumato.console import (
    DataDirOption,
    DeviceOption,
    ModelsDirOption,
    out,
    progress_bar,
    user_errors,
)


def upscale(
    picture: Annotated[Path, typer.Argument(help="The picture: .png, .jpg or .webp.")],
    scale: Annotated[
        float, typer.Option("--scale", "-s", help="How many times larger each side (up to 8).")
    ] = 2.0,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Lanczos (the default), Nearest, or an upscaler model by name "
            "(sfumato models list --kind upscalers) or path.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Where to write it. Default: beside the picture, NAME-x4.png.",
            show_default=False,
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing files.")] = False,
    device: DeviceOption = "auto",
    data_dir: DataDirOption = None,
    models_dir: ModelsDirOption = None,
) -> None:
    """Make a picture larger, keeping its metadata (the upscale added, as A1111 writes it).

    Example: sfumato upscale castle.png --scale 4 --model 4x-UltraSharp
    """
    with user_errors():
        from sfumato.catalog.scan import Catalog
        from sfumato.catalog.upscalers import find_upscaler
        from sfumato.datadir import DataDir
        from sfumato.engine.device import pick_device
        from sfumato.engine.images import read_picture
        from sfumato.jobs.upscales import carried_metadata, kept_texts
        from sfumato.metadata.files import image_format, save_image
        from sfumato.upscale import models
        from sfumato.upscale.run import Upscaler, steps, upscale

        source = read_picture(picture, "The picture")
        if model and Path(model).expanduser().is_file():  # a file the user names: any path
            path = Path(model).expanduser()
            chosen = Upscaler(path.stem, path, models.describe(path).scale)
        else:
            folders = DataDir.resolve(data_dir).model_dirs(models_dir)
            chosen = find_upscaler(model, Catalog.scan(folders, bundled=False))
        label = f"x{scale:g}"
        output = output or picture.with_name(f"{picture.stem}-{label}{picture.suffix}")
        image_format(output)
        with progress_bar("Tile") as progress:
            task = progress.add_task("tiles", total=steps(source.size, scale, chosen))
            result = upscale(
                source,
                scale,
                chosen,
                pick_device(device),
                lambda done, total: progress.update(task, completed=done, total=total),
            )
        texts = kept_texts(picture.read_bytes())
        parameters, data = carried_metadata(texts, scale, chosen.name, None)
        save_image(result, output, parameters, data, overwrite)
        out.print(
            f"Saved {output} ({result.width}x{result.height}, {chosen.name})", highlight=False
        )
