"""The generation request as the API takes it (JSON for /v1, also what the Dezgo routes'
forms become), and how it becomes a queued job."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, create_model
from sqlalchemy import select

from sfumato.engine.parameters import MAX_PROMPT_CHARS, MODEL, PARAMETERS, Parameter
from sfumato.engine.request import GenerationRequest
from sfumato.jobs.submit import submit
from sfumato.store.tables import Job, Upload, User, owned
from sfumato.studio import Studio
from sfumato.uploads import decode_base64, save_upload

UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


class LoraInput(BaseModel):
    name: str = Field(max_length=255)
    weight: float = 1.0


class _RequestFields(BaseModel):
    """What is not a row of the parameter table: the prompt, the model, LoRAs, pictures and
    the file format."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    model: str | None = Field(None, max_length=255, description="Name, lineage@version or hash.")
    init_image: str | None = Field(
        None, description="Image-to-image: an upload's id, or the picture in base64."
    )
    mask_image: str | None = Field(
        None, description="Inpainting (white = repaint): an upload's id, or base64."
    )
    loras: list[LoraInput] = Field(default_factory=list, max_length=8)
    # Dezgo's names for two LoRAs
    lora1: str | None = Field(None, max_length=255)
    lora1_strength: float = 1.0
    lora2: str | None = Field(None, max_length=255)
    lora2_strength: float = 1.0
    format: str = Field("png", description="png, jpg or webp.")
    enable_hr: bool | None = Field(
        None,
        description="The hires fix (A1111's): true, false, or left out: on when hr_scale, "
        "hr_resize_x or hr_resize_y is given.",
    )

    def to_request(self) -> GenerationRequest:
        loras = [(x.name, x.weight) for x in self.loras]
        for name, weight in ((self.lora1, self.lora1_strength), (self.lora2, self.lora2_strength)):
            if name:
                loras.append((name, weight))
        values = {p.name: getattr(self, p.name) for p in PARAMETERS}
        return GenerationRequest(
            prompt=self.prompt, loras=loras, enable_hr=self.enable_hr, **values
        )


def parameter_field(p: Parameter, **extra):
    """A pydantic field for a row of the parameter table: left out by default (the request's
    resolution fills it), its bounds documented in the schema (``resolve`` enforces them with
    a sentence of its own)."""
    description = p.help if p.default == MODEL else f"{p.help} Left out: {p.default}."
    return (
        p.kind | None,
        Field(
            None,
            description=description,
            max_length=p.max_length,
            json_schema_extra=p.schema() or None,
            **extra,
        ),
    )


# Every field but the prompt may be left out: the user's preferences, then the model's card,
# then the family's defaults fill it.
GenerationInput = create_model(
    "GenerationInput",
    __base__=_RequestFields,
    __doc__="A generation request: every field but the prompt may be left out.",
    **{p.name: parameter_field(p) for p in PARAMETERS},
)


def picture_upload(
    studio: Studio, user: User, value: str | bytes | None, what: str, made: list[str]
) -> str | None:
    """An upload id for a picture given as an id, base64 text or the file's bytes; the ids
    of uploads made here are added to ``made``."""
    if value is None or value == "" or value == b"":
        return None
    with studio.db.session() as session:
        if isinstance(value, str) and UPLOAD_ID.match(value):
            return owned(session, Upload, user.id, value, "upload").id
        content = value if isinstance(value, bytes) else decode_base64(value, what)
        upload = save_upload(
            session, studio.files, user.id, content, studio.config.max_upload_bytes
        )
        made.append(upload.id)
        return upload.id


def queue_generation(
    studio: Studio,
    user: User,
    body: GenerationInput,
    source: str,
    model: str | None = None,
    init_image: str | bytes | None = None,
    mask_image: str | bytes | None = None,
) -> Job:
    made: list[str] = []
    try:
        return submit(
            studio,
            user,
            body.to_request(),
            model=model or body.model,
            fmt=body.format,
            source=source,
            init_upload=picture_upload(
                studio, user, init_image or body.init_image, "init_image", made
            ),
            mask_upload=picture_upload(
                studio, user, mask_image or body.mask_image, "mask_image", made
            ),
        )
    except BaseException:
        # pictures sent with a refused request are not kept: they would count against the
        # user's uploads and storage for a job that never was
        forget_uploads(studio, made)
        raise


def forget_uploads(studio: Studio, made: list[str]) -> None:
    """Delete the uploads ``made`` (their files and rows)."""
    if not made:
        return
    with studio.db.session() as session:
        for upload in session.scalars(select(Upload).where(Upload.id.in_(made))):
            studio.files.delete(upload.file_key)
            session.delete(upload)
