"""A user's saved preferences, applied to every request that leaves a field out.

Everything but the default model is kept per model family: 30 steps and 1024 px suit SDXL,
but would ruin a Lightning model (4 steps) or an SD 1.5 one (512 px), so a preference set
for one family never reaches another.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from sfumato.engine.families import FAMILIES
from sfumato.engine.parameters import PER_FAMILY
from sfumato.engine.request import GenerationRequest
from sfumato.engine.samplers import AUTO, get_sampler
from sfumato.errors import SfumatoError

FamilyId = Literal[tuple(FAMILIES)]  # type: ignore[valid-type]
SIZE = ("width", "height")


class _Sampler(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("sampler", check_fields=False)
    @classmethod
    def _known_sampler(cls, value: str | None) -> str | None:
        if value is None or value == AUTO:
            return None
        try:
            return get_sampler(value).id
        except SfumatoError as e:
            raise ValueError(e.message) from None


# a preference is saved, not resolved: its bounds are checked when it is saved
FamilyPreferences = create_model(
    "FamilyPreferences",
    __base__=_Sampler,
    **{
        p.name: (
            p.kind | None,
            Field(
                None,
                description=p.help,
                ge=p.minimum,
                le=p.maximum,
                multiple_of=p.multiple_of,
                max_length=p.max_length,
            ),
        )
        for p in PER_FAMILY
    },
)


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
        p.name: value
        for p in PER_FAMILY
        if p.name not in SIZE
        and getattr(request, p.name) in (None, AUTO)
        and (value := getattr(saved, p.name)) is not None
    }
    # a picture given for image-to-image sets the size by its own proportions
    if request.init_image is None and request.width is None and request.height is None:
        filled |= {name: value for name in SIZE if (value := getattr(saved, name))}
    return replace(request, **filled)
