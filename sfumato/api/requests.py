"""The generation request as the API takes it (JSON for /v1, also what the Dezgo routes'
forms become), and how it becomes a queued job."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sfumato.engine.request import MAX_PROMPT_CHARS, GenerationRequest
from sfumato.jobs.submit import submit
from sfumato.store.tables import Job, Upload, User, owned
from sfumato.studio import Studio
from sfumato.uploads import decode_base64, save_upload

UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


class LoraInput(BaseModel):
    name: str = Field(max_length=255)
    weight: float = 1.0


class GenerationInput(BaseModel):
    """Every field but the prompt may be left out: the user's preferences, then the model's
    card, then the family's defaults fill it."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    negative_prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARS)
    model: str | None = Field(None, max_length=255, description="Name, lineage@version or hash.")
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    guidance: float | None = None
    sampler: str | None = Field(None, max_length=64)
    seed: int | None = Field(None, description="-1 or left out: a random seed, reported back.")
    batch_size: int = Field(1, description="How many pictures (seed, seed+1, ...).")
    clip_skip: int | None = None
    strength: float | None = Field(None, description="Image-to-image: how much is redrawn, 0-1.")
    init_image: str | None = Field(
        None, description="Image-to-image: an upload's id, or the picture in base64."
    )
    mask_image: str | None = Field(
        None, description="Inpainting (white = repaint): an upload's id, or base64."
    )
    loras: list[LoraInput] = Field(default_factory=list, max_length=8)
    lora1: str | None = Field(None, max_length=255)
    lora1_strength: float = 1.0
    lora2: str | None = Field(None, max_length=255)
    lora2_strength: float = 1.0
    guidance_cutoff: float | None = Field(
        None, description="Faster: the share of the steps that run guidance (0-1; 1 = all)."
    )
    deep_cache: int | None = Field(
        None, description="Faster: run the whole UNet every N steps (DeepCache; 1 = every step)."
    )
    format: str = Field("png", description="png, jpg or webp.")

    @field_validator("seed")
    @classmethod
    def _seed(cls, value: int | None) -> int | None:
        return None if value == -1 else value

    def to_request(self) -> GenerationRequest:
        loras = [(x.name, x.weight) for x in self.loras]
        for name, weight in ((self.lora1, self.lora1_strength), (self.lora2, self.lora2_strength)):
            if name:
                loras.append((name, weight))
        return GenerationRequest(
            prompt=self.prompt,
            negative_prompt=self.negative_prompt,
            width=self.width,
            height=self.height,
            steps=self.steps,
            guidance=self.guidance,
            sampler=self.sampler,
            seed=self.seed,
            batch_size=self.batch_size,
            clip_skip=self.clip_skip,
            strength=self.strength,
            loras=loras,
            guidance_cutoff=self.guidance_cutoff,
            deep_cache=self.deep_cache,
        )


def picture_upload(studio: Studio, user: User, value: str | bytes | None, what: str) -> str | None:
    """An upload id for a picture given as an id, base64 text or the file's bytes."""
    if value is None or value == "" or value == b"":
        return None
    with studio.db.session() as session:
        if isinstance(value, str) and UPLOAD_ID.match(value):
            return owned(session, Upload, user.id, value, "upload").id
        content = value if isinstance(value, bytes) else decode_base64(value, what)
        return save_upload(
            session, studio.files, user.id, content, studio.config.max_upload_bytes
        ).id


def queue_generation(
    studio: Studio,
    user: User,
    body: GenerationInput,
    source: str,
    model: str | None = None,
    init_image: str | bytes | None = None,
    mask_image: str | bytes | None = None,
) -> Job:
    return submit(
        studio,
        user,
        body.to_request(),
        model=model or body.model,
        fmt=body.format,
        source=source,
        init_upload=picture_upload(studio, user, init_image or body.init_image, "init_image"),
        mask_upload=picture_upload(studio, user, mask_image or body.mask_image, "mask_image"),
    )
