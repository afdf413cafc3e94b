"""The ``sfumato`` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sfumato import __version__
from sfumato.cli_cache import cache_app
from sfumato.cli_grid import grid
from sfumato.cli_models import models_app
from sfumato.cli_options import with_parameters
from sfumato.cli_prompts import tokenize
from sfumato.cli_server import audit_log, keys_app, serve, settings_app, users_app
from sfumato.cli_upscale import upscale
from sfumato.cli_workers import worker, workers_app
from sfumato.cli_workflows import workflow_app
from sfumato.console import (
    FAMILY_CHOICES,
    BackendOption,
    DataDirOption,
    DeviceOption,
    DtypeOption,
    ModelsDirOption,
    err,
    out,
    user_errors,
)

app = typer.Typer(
    help="sfumato: make pictures from text with Stable Diffusion models, on your own machine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        out.print(f"sfumato {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """sfumato: make pictures from text with Stable Diffusion models, on your own machine."""


MODE_LABELS = {"img2img": "image-to-image", "inpaint": "inpainting"}


def _lora_option(value: str) -> tuple[str, float]:
    """'name:0.8' -> ('name', 0.8); a name alone weighs 1 (paths may hold colons)."""
    name, _, weight = value.rpartition(":")
    try:
        return (name, float(weight)) if name else (value, 1.0)
    except ValueError:
        return value, 1.0


@app.command()
@with_parameters
def generate(
    prompt: Annotated[str, typer.Argument(help="What the picture should show.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="File to write (.png, .jpg or .webp). Default: a "
            "new numbered file in the outputs folder.",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="An installed model's name, or the path of a "
            ".safetensors checkpoint or a diffusers folder.",
            show_default=False,
        ),
    ] = None,
    init_image: Annotated[
        Path | None,
        typer.Option(
            "--init-image",
            "-i",
            help="Start from this picture (image-to-image; with --mask, inpainting). Without "
            "-W/-H the result keeps its proportions at the model's native size.",
            show_default=False,
        ),
    ] = None,
    mask: Annotated[
        Path | None,
        typer.Option(
            "--mask",
            help="Inpainting: a picture the size of --init-image, white where to repaint.",
            show_default=False,
        ),
    ] = None,
    lora: Annotated[
        list[str] | None,
        typer.Option(
            "--lora",
            help="A LoRA to apply, NAME_OR_PATH or NAME_OR_PATH:WEIGHT (default 1; negative "
            "allowed); repeat for several. <lora:name:weight> in the prompt works too.",
            show_default=False,
        ),
    ] = None,
    image_format: Annotated[
        str, typer.Option("--format", help="png, jpg or webp, when -o is not given.")
    ] = "png",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the -o file if it exists.")
    ] = False,
    family: Annotated[
        str | None,
        typer.Option(
            "--family",
            help=f"{FAMILY_CHOICES}, when the model's own cannot be told apart (Lightning merges).",
            show_default=False,
            rich_help_panel="Model loading",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="A diffusers-format folder with configs and tokenizers for an unusual checkpoint.",
            show_default=False,
            rich_help_panel="Model loading",
        ),
    ] = None,
    lightning: Annotated[
        Path | None,
        typer.Option(
            "--lightning",
            help="An SDXL-Lightning UNet "
            "or LoRA file to run an SDXL checkpoint with (2, 4 or 8 steps).",
            show_default=False,
            rich_help_panel="Model loading",
        ),
    ] = None,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
    backend: BackendOption = None,
    preview_every: Annotated[
        int,
        typer.Option(
            "--preview-every",
            help="Write a rough preview of each picture every N steps, beside it "
            "(NAME.stepNNN.png). 0: none.",
            min=0,
        ),
    ] = 0,
    data_dir: DataDirOption = None,
    models_dir: ModelsDirOption = None,
    estimate: Annotated[
        bool,
        typer.Option(
            "--estimate",
            help="Say how long it would take on this machine (learned from the CLI's past "
            "runs here) and exit without generating.",
        ),
    ] = False,
    parameters: dict | None = None,  # the generation parameters' options (cli_options)
) -> None:
    """Make a picture from a prompt.

    Every setting left out takes the model's recommended value.

    Example: sfumato generate "a lighthouse at dusk, oil painting" -o lighthouse.png
    """
    with user_errors():
        import time

        from PIL import Image

        from sfumato.engine.backends import choose_backend
        from sfumato.engine.device import INT8, pick_device
        from sfumato.engine.images import read_picture
        from sfumato.engine.loader import LoadOptions
        from sfumato.engine.request import GenerationRequest
        from sfumato.generation import GenerationJob

        request = GenerationRequest(
            prompt,
            init_image=read_picture(init_image, "--init-image") if init_image else None,
            mask_image=read_picture(mask, "--mask") if mask else None,
            loras=[_lora_option(x) for x in lora or []],
            **parameters,
        )
        job = GenerationJob.prepare(
            request,
            model=model,
            output=output,
            image_format=image_format,
            overwrite=overwrite,
            family=family,
            data_dir=data_dir,
            models_dirs=models_dir,
            load=LoadOptions(
                device=device,
                dtype=dtype,
                config_dir=config,
                lightning=lightning,
                backend=backend,
            ),
        )
        for warning in job.warnings:
            err.print(f"[yellow]Warning:[/] {warning}", highlight=False)
        s = job.settings
        steps = f"{s.steps} step" + ("" if s.steps == 1 else "s")
        err.print(
            f"{job.source.name} ({job.source.family.label}) · {s.width}x{s.height} · {steps} · "
            f"{job.sampler_name} · CFG {s.guidance:g} · seed {s.seed}"
            + (f" · {MODE_LABELS[s.mode]}, strength {s.strength:g}" if s.strength else "")
            + (f" · LoRA {', '.join(f'{n}:{w:g}' for n, w, _ in s.loras)}" if s.loras else "")
            + (f" · guidance cutoff {s.guidance_cutoff:g}" if s.guidance_cutoff < 1 else "")
            + (f" · DeepCache {s.deep_cache}" if s.deep_cache > 1 else "")
            + (f" · {_hires_label(s)}" if s.hires else ""),
            highlight=False,
        )
        if estimate:
            from sfumato.timings import estimate_run

            out.print(estimate_run(job.data, job.source.name, s.to_dict()).said, highlight=False)
            return
        started = time.perf_counter()
        # said once, when it happens: later runs read the converted model from the data folder
        if choose_backend(job.load_options, pick_device(device)).converts(job.source):
            how = "quantizing it to int8" if dtype == INT8 else "converting it"
            err.print(
                f"First run of {job.source.name}: {how} for this CPU (once; later runs start "
                "in seconds).",
                highlight=False,
            )
        with err.status("Loading the model..."):
            job.load()
        loaded = time.perf_counter()
        with Progress(
            TextColumn("Generating"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task("steps", total=s.steps + s.hires_steps)

            def on_step(step) -> None:
                progress.update(task, completed=step.done, total=step.total)
                if preview_every and (step.done % preview_every == 0 or step.done == step.total):
                    for index, path in enumerate(job.outputs):
                        frame = path.with_name(f"{path.stem}.step{step.done:03d}.png")
                        size = s.hires_size if step.done > s.steps else (s.width, s.height)
                        step.preview(index).resize(size, Image.Resampling.BILINEAR).save(frame)

            images = job.render(on_step)
        rendered = time.perf_counter()
        saved = job.save(images, job.outputs, job.overwrite)
        # timed, for the next --estimate (the CLI keeps no other history)
        from sfumato.timings import record

        record(job.data, job.source.name, s.to_dict(), {"load_s": round(loaded - started, 4),
               "engine_s": round(rendered - loaded, 4),
               "save_s": round(time.perf_counter() - rendered, 4)})  # fmt: skip
        for path, image_seed in saved:
            out.print(f"Saved {path} (seed {image_seed})", highlight=False)


@app.command()
def info(
    image: Annotated[Path, typer.Argument(help="A PNG, JPEG or WebP picture.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """How a picture was made: prompt, seed and settings, from sfumato, A1111, Forge, ComfyUI,
    InvokeAI or Fooocus metadata."""
    with user_errors():
        import json
        import shlex

        from sfumato.engine.prompts import extract_lora_tags
        from sfumato.metadata.read import read_info

        found = read_info(image)
        if as_json:
            out.print_json(json.dumps(found.to_dict()))
            return
        # shown and carried only where they are not the default
        clip_skip = found.clip_skip if (found.clip_skip or 1) > 1 else None
        cutoff = found.guidance_cutoff if (found.guidance_cutoff or 1) < 1 else None
        deep_cache = found.deep_cache if (found.deep_cache or 1) > 1 else None
        # int8 pictures differ from the default's: the command carries it
        int8 = "int8" if found.extra.get("backend") == "openvino int8" else None
        rows = {
            "Made with": found.tool,
            "Prompt": found.prompt,
            "Negative prompt": found.negative_prompt,
            "Seed": found.seed,
            "Steps": found.steps,
            "Guidance": found.guidance,
            "Sampler": " ".join(x for x in (found.sampler, found.scheduler) if x),
            "Size": f"{found.width}x{found.height}" if found.width else None,
            "Model": " ".join(
                x for x in (found.model, found.model_hash and f"[{found.model_hash}]") if x
            ),
            "LoRAs": ", ".join(
                f"{x['name']}:{x['weight']:g}" for x in found.loras if x["weight"] is not None
            ),
            "Denoising strength": found.strength,
            "Clip skip": clip_skip,
            "Guidance cutoff": cutoff,
            "DeepCache": deep_cache,
            "Hires fix": _found_hires_label(found),
            "UNet": int8,
            "Upscaled": _found_upscale_label(found),
        }
        for label, value in rows.items():
            if value not in (None, ""):
                out.print(f"{label + ':':<20}{value}", highlight=False)
        command = ["sfumato", "generate", found.prompt]

        def add(*flags) -> None:
            for flag, value in flags:
                if value not in (None, ""):
                    command.extend([flag, f"{value:g}" if isinstance(value, float) else str(value)])

        add(("-n", found.negative_prompt), ("--seed", found.seed), ("--steps", found.steps),
            ("--cfg", found.guidance), ("-W", found.width), ("-H", found.height),
            ("--sampler", _known_sampler(found.sampler, found.scheduler)))  # fmt: skip
        # LoRAs given outside the prompt (sfumato's --lora); A1111's are tags in the prompt
        tagged = {name for name, _ in extract_lora_tags(found.prompt or "")[1]}
        add(*(("--lora", f"{x['name']}:{x['weight']:g}") for x in found.loras
              if x["weight"] is not None and x["name"] not in tagged))  # fmt: skip
        add(("--clip-skip", clip_skip), ("--guidance-cutoff", cutoff), ("--deep-cache", deep_cache),
            ("--dtype", int8))  # fmt: skip
        if _found_hires_label(found):
            add(("--hires", found.hr_scale), ("--hires-width", found.hr_resize_x or None),
                ("--hires-height", found.hr_resize_y or None),
                ("--hires-upscaler", found.hr_upscaler),
                ("--hires-steps", found.hr_second_pass_steps or None),
                ("--hires-denoise", found.denoising_strength))  # fmt: skip
        out.print("\nTo make it again (with the same model):", highlight=False)
        out.print(shlex.join(command), highlight=False)


def _hires_label(s) -> str:
    """The hires fix in a few words: "hires 2x to 1024x1024, Latent, 10 steps at 0.5"."""
    width, height = s.hires_size
    factor = f" {s.hr_scale:g}x" if s.hr_scale else ""
    return (
        f"hires{factor} to {width}x{height}, {s.hr_upscaler}, {s.hires_steps} steps at "
        f"{s.denoising_strength:g}"
    )


def _found_upscale_label(found) -> str | None:
    """ "4x with 4x-UltraSharp": the upscale after the generation (A1111's extras keys)."""
    by = found.extra.get("Postprocess upscale by")
    return f"{by}x with {found.extra.get('Postprocess upscaler', '?')}" if by else None


def _found_hires_label(found) -> str | None:
    """A picture's hires fix as read from it, or None."""
    if not (found.hr_scale or found.hr_resize_x or found.hr_resize_y or found.hr_upscaler):
        return None
    size = f"to {found.hr_resize_x or '?'}x{found.hr_resize_y or '?'}"
    words = [f"{found.hr_scale:g}x" if found.hr_scale else size, found.hr_upscaler or "Latent"]
    if found.hr_second_pass_steps:
        words.append(f"{found.hr_second_pass_steps} steps")
    if found.denoising_strength is not None:
        words.append(f"denoise {found.denoising_strength:g}")
    return ", ".join(words)


def _known_sampler(name: str | None, schedule: str | None) -> str | None:
    """Our name for another tool's sampler (and schedule), if we have it."""
    from sfumato.engine.samplers import get_sampler
    from sfumato.errors import InvalidRequest

    if not name:
        return None
    for candidate in (f"{name} {schedule}", f"{name}_{schedule}", name):
        try:
            return get_sampler(candidate).name
        except InvalidRequest:
            continue
    return None


@app.command()
def samplers(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the samplers, by the names A1111 and Dezgo's API use."""
    from sfumato.engine.samplers import SAMPLERS

    if as_json:
        import json

        rows = [{"id": s.id, "name": s.name, "aliases": list(s.aliases)} for s in SAMPLERS]
        out.print_json(json.dumps(rows))
        return
    table = Table("Name", "Id", "Also accepted", box=None, header_style="bold")
    for s in SAMPLERS:
        table.add_row(s.name, s.id, ", ".join(s.aliases))
    out.print(table)
    out.print(
        "Names are matched loosely: case, spaces and '++'/'pp' do not matter. "
        "'auto' means the model's recommended sampler."
    )


demo_app = typer.Typer(
    help="The bundled demo model: train it again, or measure it.", no_args_is_help=True
)
app.add_typer(demo_app, name="demo")
app.add_typer(models_app, name="models")
app.add_typer(cache_app, name="cache")
app.command()(serve)
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(settings_app, name="settings")
app.command("audit")(audit_log)
app.command()(tokenize)
app.command()(grid)
app.command()(upscale)
app.add_typer(workflow_app, name="workflow")
app.command()(worker)
app.add_typer(workers_app, name="workers")


@demo_app.command("train")
def demo_train(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the model into.")] = Path(
        "sfumato-demo"
    ),
    seed: Annotated[int, typer.Option("--seed", help="Everything follows from it.")] = 0,
    smoke: Annotated[
        bool,
        typer.Option("--smoke", help="A few steps of each phase only, to check the script runs."),
    ] = False,
) -> None:
    """Train the demo model from scratch on its synthetic world (about 50 minutes on 2 cores).

    The model shipped with sfumato is what `sfumato demo train --out sfumato/demo/weights`
    writes.
    """
    from dataclasses import replace

    from sfumato.demo.model import DemoConfig
    from sfumato.demo.train import smoke_config, train

    config = replace(smoke_config() if smoke else DemoConfig(), seed=seed)
    with Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeElapsedColumn(),
        console=err,
    ) as progress:
        tasks: dict[str, int] = {}

        def on_progress(phase: str, step: int, total: int, loss: float) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=total, loss=0.0)
            progress.update(tasks[phase], completed=step, total=total, loss=loss)

        folder = train(out, config, on_progress)
    out.mkdir(exist_ok=True)
    print(f"Wrote the demo model to {folder} (log: {folder / 'training-log.jsonl'})")


@demo_app.command("lora")
def demo_lora(
    destination: Annotated[
        Path, typer.Option("--out", help="The .safetensors file to write.")
    ] = Path("demo-white-background.safetensors"),
    model: Annotated[
        Path | None,
        typer.Option(
            "--model", help="A demo model folder. Default: the bundled one.", show_default=False
        ),
    ] = None,
    steps: Annotated[int, typer.Option("--steps", help="Training steps.")] = 300,
) -> None:
    """Train the demo LoRA: white backgrounds whatever the prompt says (a few minutes).

    The tests' LoRA (tests/data/demo-white-background.safetensors) is what this writes.
    """
    with user_errors():
        from sfumato.demo import WEIGHTS
        from sfumato.demo.lora import train_lora

        with err.status("Training the LoRA..."):
            path = train_lora(model or WEIGHTS, destination, steps=steps)
        out.print(f"Wrote {path}")


@demo_app.command("eval")
def demo_eval(
    model: Annotated[
        Path | None,
        typer.Option(
            "--model", help="A demo model folder. Default: the bundled one.", show_default=False
        ),
    ] = None,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="One prompt in six and 20 seeds for the negative-prompt check (what CI runs).",
        ),
    ] = False,
    json_path: Annotated[
        Path | None,
        typer.Option(
            "--json", help="Also write every figure and verdict as JSON.", show_default=False
        ),
    ] = None,
    record: Annotated[
        bool,
        typer.Option("--record", help="Write the figures into the model's card ([evaluation])."),
    ] = False,
    sheet: Annotated[
        Path | None,
        typer.Option(
            "--sheet",
            help="Write a contact sheet: every picture with its verdict.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Generate a picture for each test prompt and score it with a deterministic analyzer."""
    import json

    from sfumato.demo import WEIGHTS
    from sfumato.demo.evaluate import (
        TARGETS,
        as_json,
        contact_sheet,
        evaluate_model,
        load,
        record_in_card,
    )

    with user_errors():
        loaded = load(model or WEIGHTS)
        with Progress(
            TextColumn("Evaluating"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task("eval", total=None)
            report = evaluate_model(
                loaded,
                every=6 if quick else 1,
                negative_seeds=20 if quick else 50,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
    table = Table("Measure", "Value", "Target", "", box=None, header_style="bold")
    passed = report.passed()
    for name, value in report.rates.items():
        target = TARGETS.get(name)
        shown = f"{value:.2f}" if "points" in name or "seconds" in name else f"{value:.1%}"
        goal = "" if target is None else (f"{target:g}" if "points" in name else f"{target:.0%}")
        verdict = (
            "" if name not in passed else ("[green]pass[/]" if passed[name] else "[red]miss[/]")
        )
        table.add_row(name, shown, goal, verdict)
    out.print(f"{len(report.verdicts)} prompts")
    out.print(table)
    if json_path:
        json_path.write_text(json.dumps(as_json(report), indent=1))
    if record:
        record_in_card(model or WEIGHTS, report, quick)
    if sheet:
        contact_sheet(report, sheet)
        out.print(f"Contact sheet: {sheet}")
    if not all(passed.values()):
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
