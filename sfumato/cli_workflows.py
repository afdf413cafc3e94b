"""``sfumato workflow``: run or check a ComfyUI API-format graph on this machine, no server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sfumato.console import (
    BackendOption,
    DataDirOption,
    DeviceOption,
    DtypeOption,
    ModelsDirOption,
    err,
    out,
    user_errors,
)

workflow_app = typer.Typer(
    help="Run a ComfyUI API-format workflow (a JSON file, or a PNG that carries one) here.",
    no_args_is_help=True,
)

GraphFile = Annotated[
    Path,
    typer.Argument(
        help="A ComfyUI API-format JSON (ComfyUI: Export (API)), or a PNG that carries one."
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help='Set a node\'s input: NODE.INPUT=VALUE, e.g. --set 6.text="a lighthouse" '
        "--set 3.seed=5; repeat for several.",
        show_default=False,
    ),
]


def node_errors(body: dict, graph: dict) -> list[str]:
    """ComfyUI's error answer as lines a person reads: one per node and input at fault."""
    error = body.get("error", {})
    lines = []
    for node_id, entry in body.get("node_errors", {}).items():
        title = ((graph.get(node_id) or {}).get("_meta") or {}).get("title")
        kind = entry.get("class_type", "")
        named = f"node {node_id} ({kind}{f', {title!r}' if title and title != kind else ''})"
        for e in entry.get("errors", []):
            name = (e.get("extra_info") or {}).get("input_name")
            detail = e.get("details") or ""
            where = f"{named}, input {name}" if name else named
            lines.append(f"{where}: {e.get('message', '')}" + (f": {detail}" if detail else ""))
    if not lines:
        detail = error.get("details")
        lines.append(
            error.get("message", "The graph is not valid") + (f": {detail}" if detail else "")
        )
    return lines


def _checked(path: Path, assignments: list[str] | None, ctx):
    """The graph of ``path`` with --set applied, and its plan; node errors printed (exit 1)."""
    from sfumato.workflows.local import read_graph, set_values
    from sfumato.workflows.validate import GraphInvalid, validate

    graph = set_values(read_graph(path), assignments or [])
    try:
        return graph, validate(graph, ctx.choices(graph))
    except GraphInvalid as e:
        err.print(f"[bold red]Error:[/] {path.name} cannot run:", highlight=False)
        for line in node_errors(e.body, graph):
            err.print(f"  - {line}", highlight=False, markup=False)
        raise typer.Exit(1) from None


@workflow_app.command("validate")
def validate_command(
    path: GraphFile,
    assignments: SetOption = None,
    data_dir: DataDirOption = None,
    models_dir: ModelsDirOption = None,
) -> None:
    """Check a workflow against the installed models, as a run checks it; print what is
    wrong, node by node and input by input.

    Example: sfumato workflow validate portrait.json
    """
    with user_errors():
        from sfumato.workflows.local import LocalContext

        ctx = LocalContext(path, data_dir=data_dir, models_dirs=models_dir)
        graph, plan = _checked(path, assignments, ctx)
        pictures = plan.summary({})["batch_size"]
        out.print(
            f"{path.name}: valid · {len(graph)} nodes · {plan.steps} sampling steps · "
            f"{pictures} picture(s) saved · models: {', '.join(plan.checkpoints) or 'none'}",
            highlight=False,
        )


@workflow_app.command("run")
def run_command(
    path: GraphFile,
    assignments: SetOption = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="The PNG to write (a second picture beside it, numbered). Default: "
            "outputs/<SaveImage's prefix>_00001_.png in the data folder.",
            show_default=False,
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the -o file if it exists.")
    ] = False,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
    backend: BackendOption = None,
    data_dir: DataDirOption = None,
    models_dir: ModelsDirOption = None,
) -> None:
    """Run a workflow on this machine: its SaveImage pictures are written as PNGs with the
    graph embedded as ComfyUI embeds it.

    Example: sfumato workflow run portrait.json --set 6.text="a lighthouse" -o lighthouse.png
    """
    with user_errors():
        from sfumato.engine.loader import LoadOptions
        from sfumato.errors import InvalidRequest, OutputExists
        from sfumato.workflows.local import LocalContext
        from sfumato.workflows.nodes import NODES
        from sfumato.workflows.run import run_graph

        if output is not None:
            if output.suffix.lower() != ".png":
                raise InvalidRequest(
                    "-o: a workflow's pictures are PNGs (the graph rides in them)."
                )
            if output.exists() and not overwrite:
                raise OutputExists(
                    f"{output} already exists. Choose another name, or pass --overwrite."
                )
        load = LoadOptions(device=device, dtype=dtype, backend=backend)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task("Loading", total=None)
            done_before = {"steps": 0}

            def on_progress(node_id: str, done: int, total: int) -> None:
                progress.update(task, completed=done_before["steps"] + done)
                if done == total:
                    done_before["steps"] += total

            ctx = LocalContext(path, output, overwrite, load, data_dir, models_dir, on_progress)
            graph, plan = _checked(path, assignments, ctx)
            ctx.graph = graph
            progress.update(task, total=max(1, plan.steps))

            def report(event: str, data: dict) -> None:
                if event == "executing" and data.get("node") is not None:
                    node = data["node"]
                    kind = NODES[plan.graph[node]["class_type"]].display_name
                    progress.update(task, description=f"{kind} (node {node})")
                    if not progress.console.is_terminal:
                        err.print(f"{kind} (node {node})", highlight=False)

            run_graph(plan, ctx, "cli", report)
        for saved in ctx.saved:
            out.print(f"Saved {saved}", highlight=False)
        if not ctx.saved:
            err.print("The workflow saved no picture (it has no SaveImage node).")
