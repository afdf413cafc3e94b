"""Settings of the whole server that an admin changes while it runs, kept in the database so
every process of the server sees the same ones."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from sfumato.errors import InvalidRequest, ModelNotFound
from sfumato.quotas import Quotas, parse
from sfumato.store.tables import SiteSetting

if TYPE_CHECKING:
    from sfumato.catalog.scan import Models

MAX_RETENTION_DAYS = 36_500


@dataclass(frozen=True)
class SiteSettings:
    signup_open: bool = True  # anyone may make an account (the first one is always allowed)
    retention_days: int = 30  # images older than this are deleted, favourites kept; 0: never
    audit_retention_days: int = 365  # audit log events older than this are deleted; 0: never
    max_queued_per_user: int = 20  # a user's queued and running jobs, beyond which 429
    max_grid_cells: int = 25  # cells of one comparison grid (each a picture)
    default_model: str | None = None  # for requests that name none, when several are installed
    # every user's limits unless the admin set their own (sfumato.quotas); null: unlimited
    quotas: dict = field(default_factory=lambda: Quotas().model_dump())

    def check(self) -> SiteSettings:
        if not isinstance(self.signup_open, bool):
            raise InvalidRequest("signup_open is true or false.")
        if not isinstance(self.retention_days, int) or not (
            0 <= self.retention_days <= MAX_RETENTION_DAYS
        ):
            raise InvalidRequest(
                f"retention_days is a whole number of days from 0 (keep forever) to "
                f"{MAX_RETENTION_DAYS}."
            )
        if (
            not isinstance(self.audit_retention_days, int)
            or isinstance(self.audit_retention_days, bool)
            or not 0 <= self.audit_retention_days <= MAX_RETENTION_DAYS
        ):
            raise InvalidRequest(
                f"audit_retention_days is a whole number of days from 0 (keep forever) to "
                f"{MAX_RETENTION_DAYS}."
            )
        if not isinstance(self.max_queued_per_user, int) or not (
            1 <= self.max_queued_per_user <= 10_000
        ):
            raise InvalidRequest("max_queued_per_user is a whole number from 1 to 10000.")
        if (
            not isinstance(self.max_grid_cells, int)
            or isinstance(self.max_grid_cells, bool)
            or not 1 <= self.max_grid_cells <= 100
        ):
            raise InvalidRequest("max_grid_cells is a whole number from 1 to 100.")
        if self.default_model is not None and not isinstance(self.default_model, str):
            raise InvalidRequest("default_model is a model's name, or null.")
        return replace(self, quotas=parse(self.quotas).model_dump())


NAMES = [f.name for f in fields(SiteSettings)]


def read_site(session: Session) -> SiteSettings:
    stored = {row.key: row.value for row in session.query(SiteSetting) if row.key in NAMES}
    return SiteSettings(**stored)


def update_site(session: Session, changes: dict) -> SiteSettings:
    unknown = sorted(set(changes) - set(NAMES))
    if unknown:
        raise InvalidRequest(
            f"Unknown setting {', '.join(unknown)}; the settings are {', '.join(NAMES)}."
        )
    current = read_site(session)
    if isinstance(changes.get("quotas"), dict):
        # the limits named change, the others stay (null: unlimited), as PATCH does
        changes = changes | {"quotas": current.quotas | changes["quotas"]}
    settings = replace(current, **changes).check()
    for key, value in asdict(settings).items():
        session.merge(SiteSetting(key=key, value=value))
    return settings


def check_installed(models: Models, name: str | None, what: str = "default_model") -> None:
    """Refuses (400) a model name the catalog cannot resolve, with the catalog's own sentence
    (which lists what is installed). Checked when a default is set, not when it is read: a
    model removed later is passed over by the requests that would have used it."""
    from sfumato.catalog.scan import find_checkpoint  # the catalog reads files: only here

    if not isinstance(name, str):  # null, or a wrong type that check() refuses
        return
    if len(name) > 255:
        raise InvalidRequest(f"{what} is a model's name, of at most 255 characters.")
    try:
        find_checkpoint(name, models)
    except ModelNotFound as e:
        raise InvalidRequest(f"{what}: {e.message}") from None
