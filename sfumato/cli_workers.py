"""``sfumato worker`` (a generation worker of a scaled-out server) and ``sfumato workers``
(what the workers are doing). See docs/scaling.md."""

from __future__ import annotations

import json
import logging
import socket
from typing import Annotated

import typer

from sfumato.cli_server import DatabaseOption, _print_rows
from sfumato.console import (
    BackendOption,
    BrokerOption,
    DataDirOption,
    DeviceOption,
    DtypeOption,
    FilesDirOption,
    ModelsDirOption,
    out,
    user_errors,
)

workers_app = typer.Typer(help="The generation workers of a scaled-out server.")


def worker(
    broker: BrokerOption = None,
    database_url: DatabaseOption = None,
    name: Annotated[
        str | None,
        typer.Option(
            envvar="SFUMATO_WORKER_NAME",
            help="This worker's name, unique among the workers; a worker started again under "
            "its name takes up its queue. Default: HOST-DEVICE.",
            show_default=False,
        ),
    ] = None,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
    backend: BackendOption = None,
    model_memory: Annotated[
        float | None,
        typer.Option(
            help="GB of memory for the models this worker keeps warm; the least recently "
            "used is dropped to make room.",
            show_default=False,
        ),
    ] = None,
    max_loaded_models: Annotated[
        int | None,
        typer.Option(help="Models kept warm. Default: 1, or as many as --model-memory holds."),
    ] = None,
    models_dir: ModelsDirOption = None,
    files_dir: FilesDirOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Run a generation worker: it takes jobs from the broker, runs them on its device and
    stores the pictures (Ctrl-C lets the running job finish, then stops)."""
    with user_errors():
        from sfumato.cluster.worker import GenerationWorker
        from sfumato.engine.backends import check_backend
        from sfumato.engine.device import pick_device
        from sfumato.engine.loader import LoadOptions
        from sfumato.errors import InvalidRequest
        from sfumato.studio import Studio, StudioConfig

        if not broker:
            raise InvalidRequest(
                "A worker takes its jobs from a broker: give --broker redis://HOST:6379/0 (or "
                "amqp://...), or set SFUMATO_BROKER_URL."
            )
        options = LoadOptions(
            device=None if device == "auto" else device,
            dtype=None if dtype == "auto" else dtype,
            backend=backend,
        )
        check_backend(options.backend, pick_device(options.device), options.dtype)
        studio = Studio(
            StudioConfig(
                data_dir=data_dir,
                database_url=database_url,
                models_dirs=models_dir,
                load=options,
                max_loaded_models=max_loaded_models,
                model_memory_gb=model_memory,
                run_worker=False,
                broker_url=broker,
                files_dir=files_dir,
            )
        )
        runs_on = str(pick_device(options.device))
        name = name or f"{socket.gethostname()}-{runs_on.replace(':', '')}"
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        GenerationWorker(studio, name, broker, runs_on).run()


@workers_app.command("list")
def workers_list(
    as_json: Annotated[bool, typer.Option("--json", help="As JSON, for scripts.")] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """The generation workers: device, warm models, current job, jobs done, last heartbeat."""
    with user_errors():
        from sfumato.cli_server import _db
        from sfumato.cluster import EXPIRY_S, registry

        db = _db(data_dir, database_url)
        with db.session() as session:
            rows = registry.listing(session, EXPIRY_S)
        if as_json:
            out.print_json(json.dumps(rows))
            return
        shown = [
            {
                "name": r["name"],
                "host": r["host"],
                "device": r["device"],
                "models": ", ".join(r["models"]),
                "job": r["job_id"],
                "done": r["jobs_done"],
                "heartbeat": r["heartbeat_at"][:19].replace("T", " "),
                "alive": r["alive"],
            }
            for r in rows
        ]
        _print_rows(
            shown,
            False,
            ("Name", "Host", "Device", "Warm models", "Job", "Done", "Last heartbeat", "Alive"),
            "No workers: start one with sfumato worker --broker URL --database-url URL.",
        )
