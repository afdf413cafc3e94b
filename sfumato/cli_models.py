"""``sfumato models``: list, show, add and download models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from sfumato.console import FAMILY_CHOICES, DataDirOption, ModelsDirOption, err, out, user_errors

models_app = typer.Typer(
    help="The models sfumato knows: list them, see one, add or download one.",
    no_args_is_help=True,
)

KINDS = {"models": "checkpoint", "loras": "lora", "vaes": "vae"}


def _list_upscalers(catalog, as_json: bool) -> None:
    from dataclasses import asdict

    from sfumato.catalog.upscalers import listing

    rows = listing(catalog)
    if as_json:
        out.print_json(json.dumps([asdict(row) for row in rows]))
        return
    table = Table("Name", "Kind", "Architecture", "Scale", box=None)
    table.add_column("Problem", overflow="fold")
    for row in rows:
        scale = f"{row.scale}x" if row.scale else ("any" if row.kind == "resize" else "")
        table.add_row(row.name, row.kind, row.architecture or "", scale, row.broken or "")
    out.print(table)


def _catalog(data_dir, models_dir):
    from sfumato.catalog.scan import Catalog
    from sfumato.datadir import DataDir

    data = DataDir.resolve(data_dir)
    folders = data.model_dirs(models_dir)
    catalog = Catalog.scan(folders)
    for problem in catalog.problems:
        err.print(f"[yellow]Warning:[/] {problem}", highlight=False)
    return data, folders, catalog


@models_app.command("list")
def list_models(
    family: Annotated[str | None, typer.Option("--family", help=f"{FAMILY_CHOICES}.")] = None,
    category: Annotated[
        str | None, typer.Option("--category", help="anime, realistic, artistic, ...")
    ] = None,
    all_versions: Annotated[
        bool,
        typer.Option("--all-versions", help="Every version, hidden and deprecated ones too."),
    ] = False,
    kind: Annotated[
        str, typer.Option("--kind", help="models, loras, vaes or upscalers.")
    ] = "models",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    data_dir: DataDirOption = None,
    models_dir: ModelsDirOption = None,
) -> None:
    """List the installed models, the newest version of each."""
    with user_errors():
        from sfumato.errors import InvalidRequest

        if kind not in (*KINDS, "upscalers"):
            raise InvalidRequest(f"--kind is models, loras, vaes or upscalers, not '{kind}'.")
        _, folders, catalog = _catalog(data_dir, models_dir)
        if kind == "upscalers":
            _list_upscalers(catalog, as_json)
            return
        entries = catalog.listing(KINDS[kind], all_versions, family, category)
        from sfumato.catalog.views import entry_view

        rows = [entry_view(e, catalog.versions_of(e)) for e in entries]
        if as_json:
            out.print_json(json.dumps(rows))
            return
        if not rows:
            out.print(f"No {kind} in {', '.join(map(str, folders))}.")
            return
        table = Table("Name", "Family", "Category", "Versions", box=None)
        table.add_column("Path", overflow="fold")
        for e, row in zip(entries, rows, strict=True):
            name = e.display + (" (deprecated)" if e.card.deprecated else "")
            name += " (broken)" if e.broken else ""
            versions = ", ".join(row["versions"]) if len(row["versions"]) > 1 else ""
            where = "bundled" if e.bundled else str(e.path)
            table.add_row(name, e.family or "?", e.card.category or "", versions, where)
        out.print(table)
        if not all_versions and any(len(v) > 1 for v in catalog.lineages(KINDS[kind]).values()):
            out.print("Older versions: --all-versions. Ask for one by name@version.")


@models_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="A model's name, name@version, or hash.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    data_dir: DataDirOption = None,
    models_dir: ModelsDirOption = None,
) -> None:
    """Everything sfumato knows about one model or LoRA: card, settings, versions, hashes."""
    with user_errors():
        from sfumato.catalog.hashes import HashCache
        from sfumato.errors import ModelNotFound

        data, _, catalog = _catalog(data_dir, models_dir)
        hashes = HashCache(data.hashes)
        try:
            entry = catalog.resolve(name, "checkpoint", hashes)
        except ModelNotFound as not_a_model:
            entry = _other_kinds(catalog, name, hashes)
            if entry is None:
                raise not_a_model from None
        from sfumato.catalog.views import entry_view

        row = entry_view(entry, catalog.versions_of(entry))
        if entry.path.is_file():
            row["sha256"] = hashes.sha256(entry.path)
            row["autov2"] = row["sha256"][:10]
            if entry.kind == "lora":
                row["lora_hash"] = hashes.lora_hash(entry.path)
        if as_json:
            out.print_json(json.dumps(row))
            return
        out.print(f"[bold]{entry.display}[/]  ({entry.kind}, {entry.family or 'family unknown'})")
        labels = {
            "path": "File",
            "category": "Category",
            "versions": "Versions",
            "defaults": "Recommended",
            "trigger_words": "Trigger words",
            "keywords": "Keywords",
            "source_url": "Source",
            "license": "Licence",
            "sha256": "SHA256",
            "autov2": "Hash (AutoV2)",
            "lora_hash": "LoRA hash (A1111)",
            "broken": "Cannot be used",
        }
        for key, label in labels.items():
            value = row.get(key)
            if not value:
                continue
            if isinstance(value, dict):
                joiner = " " if key == "keywords" else "="
                value = ", ".join(f"{k}{joiner}{v}" for k, v in value.items())
            elif isinstance(value, list):
                value = ", ".join(value)
            out.print(f"{label + ':':<18} {value}", highlight=False)
        if row["description"]:
            out.print(row["description"], highlight=False)
        if entry.card.inferred:
            out.print("(No card: read from the files. `sfumato models add` writes one to edit.)")


def _other_kinds(catalog, name: str, hashes):
    from sfumato.errors import ModelNotFound

    for kind in ("lora", "vae"):
        try:
            return catalog.resolve(name, kind, hashes)
        except ModelNotFound:
            continue
    return None


@models_app.command("add")
def add(
    path: Annotated[Path, typer.Argument(help="A .safetensors file or a diffusers folder.")],
    category: Annotated[str | None, typer.Option("--category")] = None,
    version: Annotated[str | None, typer.Option("--version")] = None,
    lineage: Annotated[
        str | None, typer.Option("--lineage", help="Which model this is a version of.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Display name.")] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    move: Annotated[
        bool, typer.Option("--move", help="Move the file into the models folder, not copy.")
    ] = False,
    data_dir: DataDirOption = None,
    models_dir: ModelsDirOption = None,
) -> None:
    """Put a model into the models folder (copied) and write its card."""
    with user_errors():
        from sfumato.catalog.scan import Catalog
        from sfumato.datadir import DataDir
        from sfumato.errors import ModelNotFound

        path = path.expanduser().resolve()
        if not path.exists():
            raise ModelNotFound(f"No file or folder at {path}.")
        folders = DataDir.resolve(data_dir).model_dirs(models_dir)
        if not any(path.is_relative_to(f.resolve()) for f in folders):
            folders[0].mkdir(parents=True, exist_ok=True)
            target = folders[0] / path.name
            if target.exists():
                raise ModelNotFound(f"{target} already exists.")
            if move:
                shutil.move(path, target)
            elif path.is_dir():
                shutil.copytree(path, target)
            else:
                shutil.copy2(path, target)
            path = target
        entry = Catalog.describe(path)
        if entry.broken:
            err.print(f"[yellow]Warning:[/] {entry.broken}", highlight=False)
        given = {
            "category": category,
            "version": version,
            "lineage": lineage,
            "name": name,
            "description": description,
        }
        _write_card(entry, given)
        out.print(f"Added {entry.display} ({entry.kind}, {entry.family}) at {path}")


def _write_card(entry, given: dict) -> Path:
    from sfumato.catalog.cards import write_card

    card = entry.card
    for key, value in given.items():
        if value is not None:
            setattr(card, key, value)
    card.inferred = card.inferred and all(v is None for v in given.values())
    card.extra.pop("problem", None)
    return write_card(entry.path, card)


@models_app.command("pull")
def pull(
    url: Annotated[
        str,
        typer.Argument(
            help="An https:// URL of a model or LoRA file, or hf:OWNER/REPO/FILE on the "
            "Hugging Face Hub."
        ),
    ],
    sha256: Annotated[
        str | None, typer.Option("--sha256", help="The file's expected sha256, to verify it.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="File name to save as.")] = None,
    category: Annotated[str | None, typer.Option("--category")] = None,
    version: Annotated[str | None, typer.Option("--version")] = None,
    data_dir: DataDirOption = None,
    models_dir: ModelsDirOption = None,
) -> None:
    """Download a model or LoRA into the models folder (resumes; verifies the sha256).

    The only command that reaches the network, and only the address it is given.
    """
    with user_errors():
        from sfumato.catalog.download import pull_from_hub
        from sfumato.catalog.scan import LORA, Catalog
        from sfumato.datadir import DataDir

        folder = DataDir.resolve(data_dir).model_dirs(models_dir)[0]
        if url.startswith("hf:"):
            path = pull_from_hub(url.removeprefix("hf:"), folder)
        else:
            path = _download_with_progress(url, folder, name, sha256)
        entry = Catalog.describe(path)
        if entry.kind == LORA:  # LoRAs live apart, as in A1111's layout
            (folder / "Lora").mkdir(exist_ok=True)
            path = path.rename(folder / "Lora" / path.name)
            entry.path = path
        card = {"category": category, "version": version}
        entry.card.source_url = url.split("#")[0]
        _write_card(entry, card)
        if entry.broken:
            err.print(f"[yellow]Warning:[/] {entry.broken}", highlight=False)
        out.print(f"Downloaded {entry.display} ({entry.kind}, {entry.family}) to {path}")


def _download_with_progress(url: str, folder: Path, name: str | None, sha256: str | None) -> Path:
    from sfumato.catalog.download import download

    with Progress(
        TextColumn("Downloading"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("download", total=None)
        path = download(
            url,
            folder,
            name=name,
            sha256=sha256,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    return path
