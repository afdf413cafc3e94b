"""``sfumato serve`` and what an operator needs without a browser: ``users``, ``keys`` and
``settings``."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket
import subprocess
import sys
from typing import Annotated

import typer
from rich.table import Table

from sfumato.console import (
    DataDirOption,
    FilesDirOption,
    ModelsDirOption,
    err,
    out,
    user_errors,
)

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="SFUMATO_DATABASE_URL",
        help="sqlite:///PATH or postgresql://USER@HOST:PORT/NAME. Default: sfumato.db in the "
        "data folder.",
        show_default=False,
    ),
]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 for every one.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    personal: Annotated[
        bool,
        typer.Option(
            "--personal",
            help="One user on this machine, no login (only on 127.0.0.1 / localhost).",
        ),
    ] = False,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = None,
    dtype: Annotated[
        str | None,
        typer.Option(
            help="auto, fp32, fp16, bf16 or int8 (the UNet quantized on OpenVINO: faster on "
            "CPUs with VNNI or AMX; a model the free memory cannot quantize runs without). "
            "Default: fp16 on GPUs, bf16 or fp32 on the CPU."
        ),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            help="auto (OpenVINO on the CPU, else torch), torch or openvino: OpenVINO runs the "
            "UNet and VAE decoder faster on the CPU (each model is converted once, then "
            "cached). Default: SFUMATO_BACKEND, else auto."
        ),
    ] = None,
    max_loaded_models: Annotated[
        int | None,
        typer.Option(
            help="Models kept in memory between requests. Default: 1, or as many as "
            "--model-memory holds.",
            show_default=False,
        ),
    ] = None,
    model_memory: Annotated[
        float | None,
        typer.Option(
            help="GB of memory for loaded models: the least recently used is dropped to make "
            "room, and a larger model is refused.",
            show_default=False,
        ),
    ] = None,
    no_warm_up: Annotated[
        bool,
        typer.Option(
            "--no-warm-up",
            help="Start cold: by default the server loads its default model and draws one "
            "short picture right after start (the page and /v1/health say 'warming up'), so "
            "the first user's picture is as quick as the next. Also SFUMATO_WARM_UP=0.",
        ),
    ] = False,
    int8_in_background: Annotated[
        bool,
        typer.Option(
            "--int8-in-background",
            help="After the warm-up, quantize the default model's UNet to int8 in a background "
            "process (minutes; about 16 GiB for SD 1.5) and switch its jobs to it if it is at "
            "least a tenth faster and its pictures close to the default's (/v1/health says "
            "how it went; the model's card keeps the figures). CPUs with VNNI or AMX only.",
        ),
    ] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
    models_dir: ModelsDirOption = None,
    broker: Annotated[
        str | None,
        typer.Option(
            "--broker",
            envvar="SFUMATO_BROKER_URL",
            help="Scale out: hand jobs to generation workers (sfumato worker) through this "
            "Celery broker, redis://HOST:6379/0 or amqp://USER:PASSWORD@HOST:5672//, instead "
            "of running them in this process. Needs a database every process reaches "
            "(--database-url postgresql://...).",
            rich_help_panel="Scale-out",
            show_default=False,
        ),
    ] = None,
    devices: Annotated[
        str | None,
        typer.Option(
            help="With --broker: start a worker for each of these devices beside the API, "
            "e.g. cuda:0,cuda:1.",
            rich_help_panel="Scale-out",
            show_default=False,
        ),
    ] = None,
    files_dir: FilesDirOption = None,
) -> None:
    """Run the server: the API (docs at /docs) and its job queue, in one process (or, with
    --broker, with generation workers on other processes and machines)."""
    with user_errors():
        import uvicorn

        from sfumato.api.app import create_app
        from sfumato.cluster import without_password
        from sfumato.engine.backends import check_backend
        from sfumato.engine.device import INT8, pick_device
        from sfumato.engine.loader import LoadOptions
        from sfumato.errors import InvalidRequest
        from sfumato.studio import Studio, StudioConfig

        if personal and not _is_loopback(host):
            raise InvalidRequest(
                f"--personal lets anyone who reaches the server in without a login, so it "
                f"listens only on 127.0.0.1 or localhost, not {host}. Make accounts instead "
                "(sfumato users add)."
            )
        if devices and not broker:
            raise InvalidRequest(
                "--devices starts workers for a scaled-out server: give --broker too."
            )
        _check_port_free(host, port)
        # a backend that cannot run is said now, not at the first job
        runs_on = check_backend(backend, pick_device(device), dtype)
        config = StudioConfig(
            data_dir=data_dir,
            database_url=database_url,
            models_dirs=models_dir,
            personal=personal,
            load=LoadOptions(device=device, dtype=dtype, backend=backend),
            max_loaded_models=max_loaded_models,
            model_memory_gb=model_memory,
            broker_url=broker,
            files_dir=files_dir,
            warm_up=False if no_warm_up else None,
            int8_in_background=int8_in_background,
        )
        studio = Studio(config)
        err.print(
            f"sfumato on http://{host}:{port}  (API docs: /docs; data: {studio.data.root}; "
            f"models run on {'OpenVINO' if runs_on == 'openvino' else 'PyTorch'}"
            + (", the UNet in int8" if dtype == INT8 else "")
            + ("; personal mode: no login" if personal else "")
            + (f"; jobs go to the workers of {without_password(broker)}" if broker else "")
            + ")",
            highlight=False,
        )
        with _workers_beside(devices, studio, broker, sys.argv):
            uvicorn.run(create_app(studio), host=host, port=port, log_level="info")


@contextlib.contextmanager
def _workers_beside(devices: str | None, studio, broker: str | None, argv: list[str]):
    """``--devices``: a ``sfumato worker`` process per device, stopped with the server."""
    workers, seen = [], []
    for device in [d.strip() for d in (devices or "").split(",") if d.strip()]:
        seen.append(device)
        name = f"{socket.gethostname()}-{device.replace(':', '')}"
        if seen.count(device) > 1:  # cpu,cpu: two workers on the CPU
            name += f"-{seen.count(device)}"
        command = [sys.executable, "-m", "sfumato", "worker", "--broker", broker, "--device",
                   device, "--name", name, "--database-url", studio.db.url, "--data-dir",
                   str(studio.data.root), "--files-dir", str(studio.files.root)]  # fmt: skip
        for folder in studio.config.models_dirs or []:
            command += ["--models-dir", str(folder)]
        # uvicorn ends its process by the signal that stopped it, past any cleanup here: each
        # worker watches this process instead, and stops with it
        env = dict(os.environ, SFUMATO_STOP_WITH=str(os.getpid()))
        workers.append(subprocess.Popen(command, env=env))
    try:
        yield
    finally:  # the server could not start
        for process in workers:
            process.terminate()


def _check_port_free(host: str, port: int) -> None:
    from sfumato.errors import SfumatoError

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            raise SfumatoError(
                f"Cannot listen on {host}:{port}: {e.strerror}. Is another server running "
                "there? Choose another with --port."
            ) from None


users_app = typer.Typer(help="Accounts: add, list, disable, reset passwords.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)
settings_app = typer.Typer(
    help="The server's settings: sign-up, retention, queue limit, default model.",
    no_args_is_help=True,
)


def _db(data_dir, database_url):
    from sfumato.datadir import DataDir
    from sfumato.store.db import Database
    from sfumato.store.db import database_url as url_for

    db = Database(url_for(DataDir.resolve(data_dir).root, database_url))
    db.migrate()
    return db


def _print_rows(rows: list[dict], as_json: bool, headers: tuple[str, ...], empty: str) -> None:
    """Rows as JSON for scripts, else a table (true shown as "yes", false as nothing)."""
    if as_json:
        out.print_json(json.dumps(rows))
        return
    if not rows:
        out.print(empty)
        return
    table = Table(*headers, box=None, header_style="bold")
    for column in table.columns:  # a narrow terminal folds a cell, never cuts it ("…")
        column.overflow = "fold"
    table.columns[0].no_wrap = True  # names and ids are copied whole
    for row in rows:
        cells = [
            "" if v is None else ("yes" if v else "") if isinstance(v, bool) else str(v)
            for v in row.values()
        ]
        table.add_row(*cells)
    out.print(table)


def _password(password: str | None) -> str:
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


PasswordOption = Annotated[
    str | None,
    typer.Option(help="The password; asked for (hidden) when left out.", show_default=False),
]


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="The new user's name.")],
    password: PasswordOption = None,
    admin: Annotated[bool, typer.Option("--admin", help="May change the server's settings.")] = (
        False
    ),
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Make an account (the first one is always an admin)."""
    with user_errors():
        from sfumato import audit
        from sfumato.accounts import create_user

        with _db(data_dir, database_url).session() as session:
            user = create_user(session, username, _password(password), True if admin else None)
            role = "admin" if user.is_admin else "user"
            audit.record(session, "user.added", audit.CLI, user, admin=user.is_admin)
        out.print(f"Added {username} ({role}).", highlight=False)


@users_app.command("list")
def users_list(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """The accounts."""
    with user_errors():
        from sqlalchemy import select

        from sfumato.store.tables import User

        with _db(data_dir, database_url).session() as session:
            rows = [
                {
                    "username": u.username,
                    "admin": u.is_admin,
                    "disabled": u.disabled,
                    "created_at": u.created_at.isoformat(timespec="seconds"),
                }
                for u in session.scalars(select(User).order_by(User.id))
            ]
        headers = ("User", "Admin", "Disabled", "Since")
        _print_rows(rows, as_json, headers, "No accounts yet: sfumato users add NAME.")


def _set_disabled(username: str, disabled: bool, data_dir, database_url) -> None:
    from sfumato import audit
    from sfumato.accounts import find_user
    from sfumato.store.tables import LoginSession

    with _db(data_dir, database_url).session() as session:
        user = find_user(session, username)
        user.disabled = disabled
        if disabled:  # logged out everywhere at once; API keys stop working too
            session.query(LoginSession).filter(LoginSession.user_id == user.id).delete()
        audit.record(session, "user.disabled" if disabled else "user.enabled", audit.CLI, user)


@users_app.command("disable")
def users_disable(
    username: Annotated[str, typer.Argument()],
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Lock an account out (its sessions end, its keys stop working); nothing is deleted."""
    with user_errors():
        _set_disabled(username, True, data_dir, database_url)
        out.print(f"Disabled {username}.", highlight=False)


@users_app.command("enable")
def users_enable(
    username: Annotated[str, typer.Argument()],
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Let a disabled account in again."""
    with user_errors():
        _set_disabled(username, False, data_dir, database_url)
        out.print(f"Enabled {username}.", highlight=False)


@users_app.command("reset-password")
def users_reset_password(
    username: Annotated[str, typer.Argument()],
    password: PasswordOption = None,
    keep_keys: Annotated[
        bool,
        typer.Option(
            "--keep-keys",
            help="Leave the account's API keys working (they are revoked by default).",
        ),
    ] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Give an account a new password: its sessions end and its API keys are revoked."""
    with user_errors():
        from sfumato import audit
        from sfumato.accounts import find_user, set_password

        with _db(data_dir, database_url).session() as session:
            user = find_user(session, username)
            revoked = set_password(session, user, _password(password), not keep_keys)
            audit.record(session, "password.reset", audit.CLI, user, keys_revoked=revoked)
        keys = f"; {revoked} API key(s) revoked" if revoked else ""
        out.print(f"New password set for {username}{keys}.", highlight=False)


@keys_app.command("create")
def keys_create(
    username: Annotated[str, typer.Argument(help="Whose key.")],
    name: Annotated[str, typer.Option(help="To tell the key apart.")] = "cli",
    expires_in_days: Annotated[
        int | None,
        typer.Option(help="It stops working after this many days (1-3650). Default: never."),
    ] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(
            help="What it may do: generate, read or admin (an admin's key only); repeat for "
            "several. Default: generate and read.",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Make an API key and print it (it is shown only this once)."""
    with user_errors():
        from sfumato import audit
        from sfumato.accounts import create_key, find_user

        with _db(data_dir, database_url).session() as session:
            user = find_user(session, username)
            key, row = create_key(session, user, name, scope or None, expires_in_days)
            audit.record(
                session,
                "key.created",
                audit.CLI,
                user,
                key_id=row.id,
                name=row.name,
                scopes=row.scopes,
                expires_at=_when(row.expires_at),
            )
        out.print(key, highlight=False)


def _when(moment) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


@keys_app.command("list")
def keys_list(
    username: Annotated[str, typer.Argument(help="Whose keys.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """A user's keys (their ids and first characters, never the keys)."""
    with user_errors():
        from sfumato.accounts import find_user, is_expired, list_keys

        with _db(data_dir, database_url).session() as session:
            keys = list_keys(session, find_user(session, username))
            # JSON for scripts keeps whole times; the table keeps to days, to fit a terminal
            when = _when if as_json else lambda m: m.date().isoformat() if m else None
            rows = [
                {
                    "id": k.id,
                    "name": k.name,
                    "starts_with": k.prefix,
                    "scopes": list(k.scopes or ()) if as_json else ",".join(k.scopes or ()),
                    **({"created_at": _when(k.created_at)} if as_json else {}),
                    "expires_at": when(k.expires_at),
                    "last_used_at": when(k.last_used_at),
                    "status": "revoked"
                    if k.revoked_at
                    else "expired"
                    if is_expired(k)
                    else "active",
                }
                for k in keys
            ]
        headers = ("Id", "Name", "Starts with", "Scopes", "Expires", "Last used", "Status")
        _print_rows(rows, as_json, headers, f"{username} has no API keys.")


@keys_app.command("revoke")
def keys_revoke(
    username: Annotated[str, typer.Argument(help="Whose key.")],
    key_id: Annotated[str, typer.Argument(help="The key's id (from keys list).")],
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Revoke a key: it stops working at once."""
    with user_errors():
        from sfumato import audit
        from sfumato.accounts import find_user, revoke_key

        with _db(data_dir, database_url).session() as session:
            user = find_user(session, username)
            row = revoke_key(session, user, key_id)
            if session.is_modified(row):  # revoked now, not before
                audit.record(session, "key.revoked", audit.CLI, user, key_id=row.id, name=row.name)
        out.print(f"Revoked {key_id}.", highlight=False)


@settings_app.command("show")
def settings_show(data_dir: DataDirOption = None, database_url: DatabaseOption = None) -> None:
    """The server's settings."""
    with user_errors():
        from dataclasses import asdict

        from sfumato.store.site import read_site

        with _db(data_dir, database_url).session() as session:
            out.print_json(json.dumps(asdict(read_site(session))))


@settings_app.command("set")
def settings_set(
    name: Annotated[
        str,
        typer.Argument(
            help="signup_open, retention_days, max_queued_per_user, default_model, or one "
            "quota as quotas.NAME (quotas.images, quotas.storage_mb, ...)."
        ),
    ],
    value: Annotated[str, typer.Argument(help="true/false, a number, a name, or null.")],
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
    models_dir: ModelsDirOption = None,
) -> None:
    """Change one setting; a running server uses it at once. A default_model must be
    installed: give the server's --models-dir if it has its own."""
    with user_errors():
        from dataclasses import asdict

        from sfumato import audit
        from sfumato.store.site import check_installed, read_site, update_site

        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value  # a bare word: a model's name
        # "quotas.images 500" sets one limit of the quotas setting, leaving the others
        setting, _, key = name.partition(".")
        change = {setting: {key: parsed}} if key else {name: parsed}
        if setting == "default_model" and parsed is not None:
            from sfumato.studio import Studio, StudioConfig

            # the catalog as the server sees it: the same folders, the same names
            config = StudioConfig(
                data_dir=data_dir, database_url=database_url, models_dirs=models_dir
            )
            check_installed(Studio(config).models(), parsed)
        with _db(data_dir, database_url).session() as session:
            before = asdict(read_site(session))
            after = asdict(update_site(session, change))
            audit.record_settings(session, before, after, audit.CLI)
        out.print_json(json.dumps(after))


def audit_log(
    limit: Annotated[int, typer.Option(help="At most this many events (1-500).")] = 50,
    action: Annotated[
        str | None,
        typer.Option(help="Only these actions: a name or its beginning (login, key.created)."),
    ] = None,
    user: Annotated[
        str | None, typer.Option(help="Only what this user did, or what was done to them.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help='From this moment: a date (2026-12-01), a time, or "7d", "12h".'),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """The audit log, newest first: logins, keys, passwords, settings, accounts."""
    with user_errors():
        from sfumato import audit

        filters = audit.Filters(
            action=action, user=user, since=audit.parse_moment(since) if since else None
        )
        with _db(data_dir, database_url).session() as session:
            events = [audit.view(e) for e in audit.page(session, filters, limit)[0]]
        if as_json:
            _print_rows(events, True, (), "")
            return
        if not events:
            out.print("No events.")
        # one line an event, as a log reads (a table of six columns folds past reading in a
        # terminal of 80): when, what, who, to whom, from where, the detail
        for e in events:
            who = e["actor"] or "(nobody)"
            line = f"{e['at'][:19].replace('T', ' ')} UTC  {e['action']}  {who}"
            line += f" → {e['target']}" if e["target"] and e["target"] != e["actor"] else ""
            line += f" from {e['address']}" if e["address"] else ""
            line += f": {e['summary']}" if e["summary"] else ""
            out.print(line, markup=False, highlight=False)
