"""What the server offers: models, samplers, health; and Dezgo's model list, /info."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from sfumato import __version__
from sfumato.api.deps import MakeUser, ReadUser, SessionDep, StudioDep
from sfumato.api.schemas import Health, ModelList, SamplerList
from sfumato.catalog.scan import CHECKPOINT, LORA, Entry
from sfumato.catalog.views import entry_view
from sfumato.engine.families import FAMILIES
from sfumato.engine.samplers import SAMPLERS
from sfumato.store.site import read_site

router = APIRouter(tags=["catalog"])

# Dezgo's text-to-image route of each family (the Dezgo routes are made from this table)
TEXT_FUNCTION = {
    "sd15": "text2image",
    "sdxl": "text2image_sdxl",
    "sdxl-lightning": "text2image_sdxl_lightning",
}


def functions(entry: Entry) -> list[str]:
    if entry.broken or entry.family not in TEXT_FUNCTION:
        return []
    return [TEXT_FUNCTION[entry.family], "image2image", "inpainting"]


@router.get(
    "/v1/models", response_model=ModelList, summary="Installed models, the newest version of each"
)
def models(
    user: ReadUser,
    studio: StudioDep,
    all_versions: Annotated[bool, Query(description="Every version, older ones too.")] = False,
    family: Annotated[str | None, Query(description=", ".join(FAMILIES) + ".")] = None,
    category: Annotated[str | None, Query(description="anime, realistic, artistic, ...")] = None,
    kind: Annotated[str, Query(pattern="^(models|loras)$")] = "models",
):
    catalog = studio.catalog()
    entries = catalog.listing(
        CHECKPOINT if kind == "models" else LORA, all_versions, family, category
    )
    return {
        "models": [
            entry_view(e, catalog.versions_of(e), with_path=False) | {"functions": functions(e)}
            for e in entries
        ]
    }


@router.get(
    "/v1/samplers", response_model=SamplerList, summary="Samplers, by the names A1111 and Dezgo use"
)
def samplers():
    return {
        "samplers": [{"id": s.id, "name": s.name, "aliases": list(s.aliases)} for s in SAMPLERS],
        "auto": "The model's recommended sampler.",
    }


@router.get("/v1/health", response_model=Health, summary="Is the server up (no login needed)")
def health(studio: StudioDep, session: SessionDep):
    site = read_site(session)
    return {
        "status": "ok",
        "version": __version__,
        "signup_open": site.signup_open,
        "personal_mode": studio.personal_user_id is not None,
        "retention_days": site.retention_days or None,
        "warm_up": studio.warm_up.view(),
        "int8": studio.int8.view(),
    }


@router.get("/info", tags=["dezgo"], summary="Dezgo-compatible: models and their functions")
def info(user: MakeUser, studio: StudioDep):
    catalog = studio.catalog()
    return {
        "models": [
            {
                "id": e.name,
                "name": e.display,
                "family": e.family,
                "category": e.card.category,
                "description": e.card.description.strip(),
                "functions": functions(e),
                "versions": [v.version for v in catalog.versions_of(e) if v.version],
            }
            for e in catalog.listing(CHECKPOINT)
            if not e.broken
        ]
    }
