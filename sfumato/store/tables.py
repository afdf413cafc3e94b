"""The database tables. Ids of things users share by URL (jobs, images, uploads, keys) are
random, so one cannot be guessed from another; users have plain numbers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy import DateTime as _DateTime
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sfumato.errors import NotFound


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class DateTime(TypeDecorator):
    """Timezone-aware UTC on every database (SQLite hands back naive values)."""

    impl = _DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    # the name as compared: "Alice" and "alice" are one account
    username_key: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    preferences: Mapped[dict] = mapped_column(JSON, default=dict)
    # the admin's limits for this user alone, over the site's defaults (sfumato.quotas)
    quotas: Mapped[dict] = mapped_column(JSON, default=dict)


class LoginSession(Base):
    __tablename__ = "login_sessions"

    # sha256 of the cookie's token: a stolen database holds no usable session
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown in lists, to tell keys apart
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # what the key may do (accounts.SCOPES); a cookie session may do all its user may
    scopes: Mapped[list] = mapped_column(JSON, default=list)


class Upload(Base):
    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    file_key: Mapped[str] = mapped_column(String(255))
    # what the file takes on disk, counted against the user's storage quota; None on rows
    # made before sizes were kept, until the studio's start fills it in
    bytes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # the file name a ComfyUI client gave it ("subfolder/name.png"): its graphs' LoadImage
    # nodes name pictures so. None for uploads of the other doors, known by their id
    name: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_created", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    source: Mapped[str] = mapped_column(String(16), default="api")  # api, dezgo, web
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    model_name: Mapped[str] = mapped_column(String(255))
    model_path: Mapped[str] = mapped_column(Text)
    # the resolved settings (every field filled, the seed drawn): running them again gives
    # the same pixels, which is what a restart does with a job that was running
    settings: Mapped[dict] = mapped_column(JSON)
    loras: Mapped[list] = mapped_column(JSON, default=list)  # [path, name, weight, hash]
    init_upload_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    mask_upload_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    format: Mapped[str] = mapped_column(String(8), default="png")
    step: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    warnings: Mapped[list] = mapped_column(JSON, default=list)
    # a graph's job (ComfyUI's API format): {"prompt": graph, "extra_data", "client_id",
    # "outputs": each output node's pictures, "cached": nodes not run again}; None otherwise
    workflow: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    # a comparison grid's job (``jobs/grids.py``): {"axes": [...], "cells": [each cell's
    # position, model and settings]}; None otherwise
    grid: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    # seconds spent loading the model, in the engine, and saving the pictures
    timings: Mapped[dict] = mapped_column(JSON, default=dict)
    # the generation worker the job was handed to (``sfumato worker``'s name; None for the
    # server's own worker thread), and when: a queued job with a worker is on its way to it.
    # With ``attempts`` it names one run of the job: only that run may finish it
    worker: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # an upscale's job (``jobs/upscales.py``): {"image_id" or "upload_id": the picture,
    # "scale", "upscaler"}; None otherwise
    upscale: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    # how long the job was expected to take when it was queued (``jobs/estimates.py``), kept
    # to tell how good the estimates are; None when nothing was known yet
    estimate: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class Worker(Base):
    """A generation worker of a scaled-out server (``sfumato worker``), as it last reported:
    its heartbeat says it is alive; one that stops beating is gone, and its job runs again."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    device: Mapped[str] = mapped_column(String(32))
    queue: Mapped[str] = mapped_column(String(160))  # the broker queue it takes jobs from
    models: Mapped[list] = mapped_column(JSON, default=list)  # paths of the models it holds warm
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # handed or running
    jobs_done: Mapped[int] = mapped_column(Integer, default=0)
    model_loads: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (Index("ix_images_user_created", "user_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    batch_index: Mapped[int] = mapped_column(Integer, default=0)  # its place in the job's batch
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    model_name: Mapped[str] = mapped_column(String(255))
    prompt: Mapped[str] = mapped_column(Text)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(8))
    favourite: Mapped[bool] = mapped_column(Boolean, default=False)
    file_key: Mapped[str] = mapped_column(String(255))
    thumb_key: Mapped[str] = mapped_column(String(255))
    bytes: Mapped[int | None] = mapped_column(Integer, nullable=True)  # picture and thumbnail
    # the full settings of this one picture (its own seed), and the model it was made with;
    # seeds go up to 2**64 - 1, past a 64-bit signed column, so they live here
    settings: Mapped[dict] = mapped_column(JSON)
    model: Mapped[dict] = mapped_column(JSON)
    # the picture this one was made from by an upscale (None for a generation's); it may
    # have been deleted since
    source_image_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)


def owned(session, table: type[Base], user_id: int, row_id: str, what: str):
    """The user's row of ``table``; another user's is "not found", as a missing one is."""
    row = session.get(table, row_id)
    if row is None or row.user_id != user_id:
        raise NotFound(f"You have no {what} {row_id!r}.")
    return row


class AuditEvent(Base):
    """Who did what to an account or to the server, for the admin (sfumato.audit). The actor's
    name is kept as well as the id, so the record still reads after the account is deleted."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    target: Mapped[str | None] = mapped_column(String(255), nullable=True)
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class SiteSetting(Base):
    """What an admin may change while the server runs (sign-up, retention, queue limit)."""

    __tablename__ = "site_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict | list | str | int | float | bool | None] = mapped_column(JSON)


class Workflow(Base):
    """A graph its owner saved under a name, with the inputs they exposed: ``{"prompt": ["6",
    "text"]}`` (input name -> node id and that node's input). Published: every user may run
    it (an admin's choice)."""

    __tablename__ = "workflows"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    graph: Mapped[dict] = mapped_column(JSON)
    inputs: Mapped[dict] = mapped_column(JSON, default=dict)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
