"""A user's saved preferences, applied to every request that leaves a field out.

Everything but the default model is kept per model family: 30 steps and 1024 px suit SDXL,
but would ruin a Lightning model (4 steps) or an SD 1.5 one (512 px), so a preference set
for one family never reaches another.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sfumato.engine.request import (
    MAX_GUIDANCE,
    MAX_PROMPT_CHARS,
    MAX_SIDE,
    MAX_STEPS,
    MIN_SIDE,
    SIDE_STEP,
    GenerationRequest,
)
from sfumato.engine.samplers import AUTO, get_sampler
from sfumato.errors import SfumatoError

FamilyId = Literal["sd15", "sdxl", "sdxl-lightning"]


class FamilyPreferences(BaseModel):
    model_config = ConfigDict(extra="forbid")

    negative_prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARS)
    steps: int | None = Field(None, ge=1, le=MAX_STEPS)
    guidance: float | None = Field(None, ge=0, le=MAX_GUIDANCE)
    sampler: str | None = Field(None, description="Any sampler name; stored as its id.")
    width: int | None = Field(None, ge=MIN_SIDE, le=MAX_SIDE, multiple_of=SIDE_STEP)
    height: int | None = Field(None, ge=MIN_SIDE, le=MAX_SIDE, multiple_of=SIDE_STEP)

    @field_validator("sampler")
    @classmethod
    def _known_sampler(cls, value: str | None) -> str | None:
        if value is None or value == AUTO:
            return None
        try:
            return get_sampler(value).id
        except SfumatoError as e:
            raise ValueError(e.message) from None


class Preferences(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_model: str | None = Field(None, max_length=255)
    families: dict[FamilyId, FamilyPreferences] = Field(default_factory=dict)


def apply_preferences(
    request: GenerationRequest, preferences: Preferences, family: str
) -> GenerationRequest:
    """The request with the user's preferences for ``family`` in the fields it left out."""
    saved = preferences.families.get(family)  # type: ignore[call-overload]
    if saved is None:
        return request
    filled = {
        name: value
        for name in ("negative_prompt", "steps", "guidance", "sampler")
        if getattr(request, name) in (None, AUTO) and (value := getattr(saved, name)) is not None
    }
    # a picture given for image-to-image sets the size by its own proportions
    if request.init_image is None and request.width is None and request.height is None:
        filled |= {name: value for name in ("width", "height") if (value := getattr(saved, name))}
    return replace(request, **filled)
