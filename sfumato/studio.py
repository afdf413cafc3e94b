"""The running server's parts in one place: configuration, database, files, the catalog of
models, what runs the jobs (``dispatch``) and its events. The web layer is built on one of
these; tests make their own with a temporary data folder."""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy import select

from sfumato.accounts import create_user
from sfumato.catalog.cards import describe_model
from sfumato.catalog.hashes import HashCache
from sfumato.catalog.scan import Catalog, Models
from sfumato.cluster import EXPIRY_S, registry
from sfumato.datadir import DataDir
from sfumato.engine.cache import GB, ModelCache
from sfumato.engine.checkpoint import ModelSource
from sfumato.engine.loader import LoadOptions
from sfumato.jobs.dispatch import Dispatch
from sfumato.jobs.events import EventBus
from sfumato.jobs.int8_switch import BackgroundInt8
from sfumato.jobs.queue import requeue_lost
from sfumato.jobs.warm_up import WarmUp, wanted
from sfumato.jobs.worker import LocalWorker
from sfumato.store.db import Database, database_url
from sfumato.store.files import LocalFiles
from sfumato.store.history import fill_missing_sizes, purge_expired
from sfumato.store.site import read_site
from sfumato.store.tables import User
from sfumato.throttle import Throttle
from sfumato.workflows.run import NodeCache

log = logging.getLogger(__name__)
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
PERSONAL_USER = "me"


@dataclass(frozen=True)
class StudioConfig:
    data_dir: Path | None = None
    database_url: str | None = None
    models_dirs: list[Path] | None = None
    personal: bool = False  # one user on this machine, no login
    load: LoadOptions = field(default_factory=LoadOptions)
    max_loaded_models: int | None = None  # None: 1, or as many as fit in model_memory_gb
    model_memory_gb: float | None = None  # memory for loaded models, least recently used evicted
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    # start what runs jobs: the server's own worker thread, or with a broker, the loop that
    # hands jobs to the generation workers (``sfumato worker``); a worker's own studio has none
    run_worker: bool = True
    purge_every_s: float = 3600.0
    # scale-out (docs/scaling.md): a Celery broker URL (redis://..., amqp://...) sends jobs to
    # generation workers on other processes and machines instead of this process's thread
    broker_url: str | None = None
    # where pictures and uploads are kept; a folder every API process and worker mounts when
    # scaled out. Default: "library" in the data folder
    files_dir: Path | None = None
    # load the default model and draw one short picture at start, in the worker thread, so
    # the first user's picture is as quick as the next (jobs/warm_up.py). None: on, unless
    # SFUMATO_WARM_UP=0; False: --no-warm-up
    warm_up: bool | None = None
    # try the warmed default model's UNet in int8 in a background process, and switch its
    # jobs to it where it wins (jobs/int8_switch.py; --int8-in-background)
    int8_in_background: bool = False


class Studio:
    def __init__(self, config: StudioConfig):
        self.data = DataDir.resolve(config.data_dir)
        # converted models (--backend openvino) are kept with the server's other data
        self.config = config = replace(config, load=config.load.cached_in(self.data.cache))
        self.db = Database(database_url(self.data.root, config.database_url))
        self.files = LocalFiles(Path(config.files_dir or self.data.root / "library"))
        self.events = EventBus()
        self.node_cache = NodeCache()  # each user's previous graph's node outputs
        self.throttle = Throttle()
        budget = config.model_memory_gb
        self.model_cache = ModelCache(
            config.max_loaded_models, int(budget * GB) if budget is not None else None
        )
        self.warm_up = WarmUp(self, _why_cold(config))
        self.int8 = BackgroundInt8(self, _why_not_int8(config))
        self.dispatch: Dispatch = LocalWorker(self)
        if config.broker_url is not None:  # Celery is imported only by those who use it
            from sfumato.cluster.dispatch import ClusterDispatch
            from sfumato.cluster.events import BrokerEvents

            self.events = BrokerEvents(config.broker_url)
            self.dispatch = ClusterDispatch(self, config.broker_url)
        self._folders = self.data.model_dirs(config.models_dirs)
        self._hashes = HashCache(self.data.hashes)
        self._catalog: tuple[list, Catalog] | None = None
        self._catalog_lock = threading.Lock()
        self.personal_user_id: int | None = None

    def catalog(self) -> Catalog:
        """The models folders as scanned; scanned again only when a file in them changed
        (a scan reads every model's header, a .ckpt whole: listing the files costs far less)."""
        with self._catalog_lock:
            state = _files_in(self._folders)
            if self._catalog is None or state != self._catalog[0]:
                self._catalog = (state, Catalog.scan(self._folders))
            return self._catalog[1]

    def source_of(self, path: Path) -> ModelSource:
        """The model at ``path`` as the catalog already describes it, card applied, without
        reading its file again; described afresh if the catalog has not listed it."""
        entry = self.catalog().entry_at(path)
        if entry is not None and entry.source is not None:
            return entry.source
        return describe_model(path)

    def models(self) -> Models:
        return Models(self._folders, self._hashes, self.catalog, allow_paths=False)

    def start(self) -> None:
        self.db.migrate()
        if self.config.personal:
            self.personal_user_id = self._personal_user()
        with self.db.session() as session:
            if filled := fill_missing_sizes(session, self.files):
                log.info("sizes of %d stored file(s) recorded, for the storage quota", filled)
        # what a server's own worker thread was running when its process died runs again;
        # what live generation workers run (a scaled-out server) is theirs to finish
        with self.db.session() as session:
            alive = [worker.name for worker in registry.alive(session, EXPIRY_S)]
            if requeued := requeue_lost(session, alive, at_start=True):
                log.info("%d interrupted generation(s) queued again", requeued)
        if self.config.run_worker:
            self.dispatch.start()

    def _personal_user(self) -> int:
        """The one user of personal mode, made at first start (admin; it never logs in)."""
        with self.db.session() as session:
            user = session.scalar(select(User).where(User.username_key == PERSONAL_USER))
            if user is None:
                user = create_user(session, PERSONAL_USER, secrets.token_urlsafe(32), True)
            return user.id

    def stop(self) -> None:
        if self.config.run_worker:
            self.dispatch.stop()
        self.db.close()

    def purge(self) -> tuple[int, int]:
        """The retention policy, applied now: (pictures, uploads) deleted."""
        with self.db.session() as session:
            return purge_expired(session, self.files, read_site(session).retention_days)


def _why_cold(config: StudioConfig) -> str | None:
    """Why this server does not warm its default model at start (None: it does)."""
    if not wanted(config.warm_up):
        return "Turned off (sfumato serve --no-warm-up, or SFUMATO_WARM_UP=0)."
    if config.broker_url is not None:
        return "The generation workers (sfumato worker) load the models: this process runs none."
    if not config.run_worker:
        return "This process runs no jobs."
    return None


def _why_not_int8(config: StudioConfig) -> str | None:
    """Why this server does not try its default model in int8 (None: it does)."""
    if not config.int8_in_background:
        return "Not asked for (sfumato serve --int8-in-background)."
    if why := _why_cold(config):
        return f"It follows the warm-up, which is off here: {why}"
    return None


def _files_in(folders: list[Path]) -> list[tuple[str, int, int]]:
    """Every file under the folders with its size and modification time: what a new scan
    would notice."""
    state = []
    for folder in folders:
        folder = Path(folder).expanduser()
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                with contextlib.suppress(OSError):  # a file removed while listing
                    stat = path.stat()
                    state.append((str(path), stat.st_size, stat.st_mtime_ns))
    return state
