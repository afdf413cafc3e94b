"""OpenAI's Images API fields onto sfumato's one request model (``GenerationInput``).

What the translation decides, each in one place:
- ``model``: a sfumato model's name picks it; a name sfumato does not have (``dall-e-3``,
  ``gpt-image-1``: what Open WebUI and LibreChat send) means the user's default model.
- ``size``: the shape of the picture; its scale is the model's. OpenAI's sizes are made for
  models that draw at 1024 px, so ``WxH`` is scaled until its shorter side is the model's
  native one (SD 1.5: 1024x1024 -> 512x512, 1536x1024 -> 768x512; SDXL as asked), rounded to
  the parameter table's grid; ``auto`` (or none) is the model's own size.
- ``n`` is the batch size; ``output_format`` the file format.
- sfumato's own settings ride along as extra fields, as LocalAI takes them
  (``negative_prompt``, ``seed``, ``steps``, ``guidance``, ``sampler``, ``width``, ...).
- an edit's mask: OpenAI's marks what to repaint with transparent pixels, sfumato's with white.
"""

from __future__ import annotations

import io
import re
from typing import Literal

from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from sfumato.api.openai.errors import OpenAIInvalid
from sfumato.api.requests import GenerationInput
from sfumato.catalog.naming import normalise
from sfumato.catalog.scan import CHECKPOINT
from sfumato.engine.images import MAX_INPUT_PIXELS
from sfumato.engine.parameters import BY_NAME, MAX_PROMPT_CHARS, PARAMETERS
from sfumato.errors import ModelNotFound, SfumatoError
from sfumato.metadata.read import read_info_bytes
from sfumato.studio import Studio
from sfumato.uploads import decode_base64

MAX_N = 10  # OpenAI's bound; within the batch bound, so n pictures are always one job
assert BY_NAME["batch_size"].maximum >= MAX_N
SIZE = re.compile(r"(\d{1,5})[xX](\d{1,5})")
# what OpenAI calls the formats, and sfumato
FORMATS = {"png": "png", "jpeg": "jpg", "jpg": "jpg", "webp": "webp"}
# a variation keeps the picture's own prompt when it carries one (sfumato's or A1111's
# metadata); else this, at a strength that keeps its composition and colours but redraws
# the detail
VARIATION_PROMPT = "a detailed, high quality picture"
VARIATION_STRENGTH = 0.6
# sfumato's settings an OpenAI request may add (n is the batch, output_format the format,
# the routes' files the pictures)
EXTRAS = tuple(p.name for p in PARAMETERS if p.name != "batch_size") + ("loras",)


class OpenAIFields(BaseModel):
    """OpenAI's own fields. Those it has and sfumato has no use for are taken and ignored:
    ``style``, ``moderation``, ``user``, ``safety_identifier``, ... (and any new one)."""

    model_config = ConfigDict(extra="ignore")

    prompt: str | None = Field(None, description="What to draw (variations: optional).")
    model: str | None = Field(
        None,
        max_length=255,
        description="A sfumato model's name; any other (dall-e-3, gpt-image-1) means your "
        "default model.",
    )
    n: int = Field(1, ge=1, le=MAX_N, description="How many pictures, 1-10.")
    size: str | None = Field(
        None,
        max_length=32,
        description="WIDTHxHEIGHT, scaled to the model's native size at that shape, or auto.",
    )
    quality: str | None = Field(
        None, max_length=32, description="Accepted and reported back; the model's steps run."
    )
    response_format: Literal["b64_json", "url"] | None = Field(
        None, description="b64_json (the default) or url (fetched with the same key)."
    )
    output_format: Literal["png", "jpeg", "jpg", "webp"] | None = None
    output_compression: int | None = Field(
        None, ge=0, le=100, description="Accepted; JPEG and WebP are stored at quality 95."
    )
    background: str | None = Field(
        None, max_length=32, description="Accepted; pictures are opaque."
    )
    stream: bool | None = Field(None, description="Not supported: leave it out or false.")


def _extra_field(name: str):
    field = GenerationInput.model_fields[name]
    return field.annotation, field


# the body as the API reference documents it: OpenAI's fields and sfumato's extras
OpenAIImageRequest = create_model(
    "OpenAIImageRequest",
    __base__=OpenAIFields,
    __doc__="OpenAI's image request; sfumato's own settings may be added as extra fields.",
    **{name: _extra_field(name) for name in EXTRAS},
)


def _invalid(error: ValidationError) -> OpenAIInvalid:
    first = error.errors()[0]
    param = ".".join(str(x) for x in first["loc"]) or None
    problems = "; ".join(
        f"{'.'.join(map(str, x['loc'])) or 'body'}: {x['msg']}" for x in error.errors()[:5]
    )
    return OpenAIInvalid(f"The request is not valid: {problems}.", param)


def read_fields(fields: dict) -> tuple[OpenAIFields, dict]:
    """OpenAI's fields, and sfumato's extras as sent (checked with the request they join).
    Forms send every value as text, and empty ones for "not set"."""
    cleaned = {k: v for k, v in fields.items() if v not in ("", None)}
    try:
        options = OpenAIFields.model_validate(cleaned)
    except ValidationError as e:
        raise _invalid(e) from None
    if options.stream:
        raise OpenAIInvalid(
            "Streaming is not supported here; leave stream out (the answer comes whole).",
            "stream",
        )
    return options, {k: cleaned[k] for k in EXTRAS if k in cleaned}


def model_name(studio: Studio, requested: str | None) -> str | None:
    """The sfumato model a request names, or None (the user's default) for a name sfumato
    does not have. A name that is partly sfumato's (two models it could mean, a version
    that does not exist) is refused with the catalog's sentence, not quietly replaced."""
    if not requested:
        return None
    models = studio.models()
    catalog = models.scan()
    try:
        return catalog.resolve(requested, CHECKPOINT, hashes=models.hashes).name
    except ModelNotFound:
        wanted = normalise(requested.partition("@")[0])
        names = (x for e in catalog.of_kind(CHECKPOINT) for x in (e.name, e.lineage))
        if wanted and any(normalise(x).startswith(wanted) for x in names):
            raise
        return None


def picture_size(size: str | None, native: tuple[int, int]) -> tuple[int, int] | None:
    """(width, height) for ``size`` on a model whose own size is ``native``; None: auto."""
    if size is None or size.lower() == "auto":
        return None
    match = SIZE.fullmatch(size.strip())
    width, height = (int(x) for x in match.groups()) if match else (0, 0)
    if not width or not height:
        raise OpenAIInvalid(
            f"size is WIDTHxHEIGHT (1024x1024, 1536x1024, 1024x1536, ...) or auto; got {size!r}.",
            "size",
        )
    side = BY_NAME["width"]
    scale = min(min(native) / min(width, height), side.maximum / max(width, height))

    def fit(pixels: int) -> int:
        grid = round(pixels * scale / side.multiple_of) * side.multiple_of
        return int(min(side.maximum, max(side.minimum, grid)))

    return fit(width), fit(height)


def generation_input(
    prompt: str | None, options: OpenAIFields, extras: dict, model: str | None, size
) -> GenerationInput:
    """The one request model, from OpenAI's fields and sfumato's extras (which win)."""
    values = {"prompt": prompt, "model": model, "batch_size": options.n}
    values["format"] = FORMATS[options.output_format or "png"]
    if size is not None:
        values |= {"width": size[0], "height": size[1]}
    try:
        return GenerationInput.model_validate(values | extras)
    except ValidationError as e:
        raise _invalid(e) from None


def repaint_mask(content: bytes, what: str) -> bytes | None:
    """OpenAI's mask (fully transparent pixels: repaint; opaque: keep) as sfumato's (white:
    repaint), a PNG; None when the picture has no transparent pixel at all."""
    try:
        image = Image.open(io.BytesIO(content))
        if image.width * image.height > MAX_INPUT_PIXELS:
            raise OpenAIInvalid(
                f"The {what} is too large: at most {MAX_INPUT_PIXELS // 1_000_000} megapixels.",
                what,
            )
        if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
            alpha = image.getchannel("A")
        elif "transparency" in image.info:
            alpha = image.convert("RGBA").getchannel("A")
        else:
            return None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise OpenAIInvalid(
            f"The {what} is not a picture sfumato can read; send a PNG (or JPEG, WebP, ...).",
            what,
        ) from None
    mask = ImageOps.invert(alpha)  # alpha 0 -> 255; partly transparent edges stay soft
    if mask.getbbox() is None:
        return None
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    return buffer.getvalue()


def variation_prompt(content: bytes) -> tuple[str, dict]:
    """The prompt for a variation of a picture, and the settings it carries that a variation
    keeps (its negative prompt)."""
    try:
        info = read_info_bytes(content)
    except SfumatoError:  # no generation data, or not a picture (refused when it is kept)
        return VARIATION_PROMPT, {}
    if not info.prompt.strip():
        return VARIATION_PROMPT, {}
    # a picture may carry a prompt longer than a request takes: its beginning is its gist
    kept = {"negative_prompt": info.negative_prompt[:MAX_PROMPT_CHARS]}
    return info.prompt[:MAX_PROMPT_CHARS], kept if info.negative_prompt else {}


def first_picture(files: dict[str, bytes], fields: dict, name: str) -> bytes | None:
    """The picture sent as ``name`` (a file, or base64 in JSON), or the first of ``name[]``."""
    for key in (name, f"{name}[]"):
        if files.get(key):
            return files[key]
        value = fields.get(key)
        if isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, str) and value:
            return decode_base64(value, name)
        if value not in (None, "", []):
            raise OpenAIInvalid(f"{name} is a picture: a file, or base64 text in JSON.", name)
    return None
