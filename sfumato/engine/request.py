"""A generation request (what the user asked, every field optional) and the settings it
resolves to (every field filled: the model's defaults, then the request, all checked)."""

from __future__ import annotations

import math
import secrets
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from sfumato.engine import hires
from sfumato.engine.families import Defaults, Family
from sfumato.engine.parameters import BY_NAME, MAX_PROMPT_CHARS, MAX_SEED
from sfumato.engine.prompts import extract_lora_tags
from sfumato.engine.samplers import AUTO, get_sampler
from sfumato.engine.variations import ALL, OFF, check_mode, expand, has_variations
from sfumato.errors import InvalidRequest

if TYPE_CHECKING:
    from PIL import Image

P = BY_NAME
MIN_SIDE, MAX_SIDE = int(P["width"].minimum), int(P["width"].maximum)
SIDE_STEP = P["width"].multiple_of
TEXT_TO_IMAGE, IMAGE_TO_IMAGE, INPAINT = "txt2img", "img2img", "inpaint"
# A1111's default for image-to-image; inpainting redraws the masked part entirely by default,
# so that it follows the prompt
DEFAULT_STRENGTH = {IMAGE_TO_IMAGE: 0.75, INPAINT: 1.0}
MIN_LORA_WEIGHT, MAX_LORA_WEIGHT = -5.0, 5.0


@dataclass
class GenerationRequest:
    prompt: str
    negative_prompt: str | None = None  # None: the model's default negative prompt
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    guidance: float | None = None
    sampler: str | None = None  # any name or id; "auto" or None: the model's recommended one
    seed: int | None = None  # None or -1: a random seed, reported back
    batch_size: int | None = None  # None: 1
    clip_skip: int | None = None
    # image-to-image and inpainting: pictures as ``images.read_picture`` gives them
    init_image: Image.Image | None = None
    mask_image: Image.Image | None = None  # white = repaint
    strength: float | None = None  # how much of the picture is redrawn, 0-1
    # (name or path, weight); ``<lora:name:weight>`` tags in the prompt are added to these
    loras: list[tuple[str, float]] = field(default_factory=list)
    # speed-ups that cost some fidelity (``shortcuts``): off unless asked for
    guidance_cutoff: float | None = None  # share of the steps that run guidance, 0-1
    deep_cache: int | None = None  # run the whole UNet every N steps; 1: every step
    variations: str | None = None  # the prompt's {a|b} choices: random, all or off
    # the hires fix (``hires.py``), A1111's fields: on with enable_hr, or (left out) when a
    # factor or a size is given
    enable_hr: bool | None = None
    hr_scale: float | None = None
    hr_resize_x: int | None = None
    hr_resize_y: int | None = None
    hr_upscaler: str | None = None
    hr_second_pass_steps: int | None = None  # 0: as many as the first pass
    denoising_strength: float | None = None  # the second pass's; image-to-image: strength


@dataclass(frozen=True)
class GenerationSettings:
    """Exactly what a generation ran with: enough to reproduce its pixels."""

    family: str
    prompt: str
    negative_prompt: str
    width: int
    height: int
    steps: int
    guidance: float
    sampler: str  # sampler id
    seed: int
    batch_size: int = 1
    clip_skip: int = 1
    mode: str = TEXT_TO_IMAGE
    strength: float | None = None  # image-to-image and inpainting only
    loras: tuple[tuple[str, float, str | None], ...] = ()  # (name, weight, A1111 hash)
    guidance_cutoff: float = 1.0
    deep_cache: int = 1
    variations: str = "random"
    # a prompt with variations (``variations.py``): the prompt each picture became, in order;
    # () when every picture has ``prompt``
    prompts: tuple[str, ...] = ()
    prompt_template: str | None = None  # a picture's: the template its prompt came from
    # the hires fix: ``hr_upscaler`` is None when it is off. width and height are the first
    # pass's, as A1111 writes them; ``hires_size`` is the picture's
    hr_scale: float | None = None  # None when a size was asked for instead
    hr_resize_x: int = 0
    hr_resize_y: int = 0
    hr_upscaler: str | None = None
    hr_second_pass_steps: int = 0  # as asked; 0: the first pass's steps
    denoising_strength: float | None = None

    @property
    def hires(self) -> bool:
        return self.hr_upscaler is not None

    @property
    def hires_size(self) -> tuple[int, int]:
        """The pictures' size: after the hires fix, or the asked one."""
        if not self.hires:
            return self.width, self.height
        return hires.final_size(
            self.width, self.height, self.hr_scale, self.hr_resize_x, self.hr_resize_y
        )

    @property
    def hires_steps(self) -> int:
        """The steps the second pass runs (0 without one)."""
        if not self.hires:
            return 0
        return self.hr_second_pass_steps or self.steps

    @property
    def seeds(self) -> list[int]:
        """Image i of a batch uses seed + i, so any one image can be made again alone."""
        return [(self.seed + i) % (MAX_SEED + 1) for i in range(self.batch_size)]

    def for_image(self, index: int) -> GenerationSettings:
        """Picture ``index`` alone: its seed, and the prompt it got from a template."""
        if not self.prompts:
            return replace(self, seed=self.seeds[index], batch_size=1)
        return replace(
            self,
            seed=self.seeds[index],
            batch_size=1,
            prompt=self.prompts[index],
            prompts=(),
            prompt_template=self.prompt,
        )

    def to_dict(self) -> dict:
        """Plain JSON values (lists, not tuples), as the settings come back from a file."""
        return asdict(self) | {
            "loras": [list(lora) for lora in self.loras],
            "prompts": list(self.prompts),
        }

    @classmethod
    def from_dict(cls, data: dict) -> GenerationSettings:
        """The settings ``to_dict`` gave (from the database, say)."""
        return cls(
            **data
            | {
                "loras": tuple(tuple(lora) for lora in data.get("loras", ())),
                "prompts": tuple(data.get("prompts", ())),
            }
        )


def random_seed() -> int:
    return secrets.randbelow(2**32)


def fit_size(
    size: tuple[int, int], native: tuple[int, int], width: int | None, height: int | None
) -> tuple[int, int]:
    """The output size for an input picture of ``size``: the one asked for, else the picture's
    proportions at about the model's native area, on the models' 8-pixel grid."""
    w, h = size
    if width and height:
        return width, height
    if width:
        return width, _snap(width * h / w)
    if height:
        return _snap(height * w / h), height
    scale = math.sqrt(native[0] * native[1] / (w * h))
    return _snap(w * scale), _snap(h * scale)


def _snap(value: float) -> int:
    return max(MIN_SIDE, min(MAX_SIDE, round(value / SIDE_STEP) * SIDE_STEP))


def resolve(
    request: GenerationRequest,
    family: Family,
    defaults: Defaults | None = None,
    upscalers: tuple[str, ...] = (),
) -> tuple[GenerationSettings, list[str]]:
    """Fill the request from the model's defaults and check every value; ``upscalers``: the
    upscaler models installed, which the hires fix may name too.

    Returns the settings and warnings worth showing (they do not stop the generation).
    """
    d = defaults or family.defaults
    warnings: list[str] = []
    if len(request.prompt) > MAX_PROMPT_CHARS:
        raise InvalidRequest(
            f"The prompt is too long ({len(request.prompt)} characters; "
            f"at most {MAX_PROMPT_CHARS})."
        )
    _hires_bounds(request)  # first: an image's strength may be denoising_strength
    mode, strength = _image_mode(request, warnings)
    width = request.width or d.width
    height = request.height or d.height
    if request.init_image is not None:
        width, height = fit_size(
            request.init_image.size, (d.width, d.height), request.width, request.height
        )
    P["width"].check(width)
    P["height"].check(height)
    # the model's default size is the one it was trained at (the family's, or its card's)
    ratio = width * height / (d.width * d.height)
    if ratio < 0.4 or ratio > 2.5:
        warnings.append(
            f"{width}x{height} is far from {d.width}x{d.height}, the size this model was trained "
            "at; expect repeated or broken subjects."
        )
    steps = d.steps if request.steps is None else request.steps
    P["steps"].check(steps)
    # image-to-image runs the last steps x strength of the steps (as diffusers counts them):
    # none at all would be a picture left as it was, which the pipelines refuse with a trace
    if strength is not None and int(steps * strength) < 1:
        raise InvalidRequest(
            f"With strength {strength:g}, {steps} step(s) redraw nothing: ask for at least "
            f"{math.ceil(1 / strength)} steps, or a higher strength."
        )
    guidance = d.guidance if request.guidance is None else float(request.guidance)
    P["guidance"].check(guidance)
    sampler_name = request.sampler if request.sampler and request.sampler != AUTO else d.sampler
    sampler = get_sampler(sampler_name)
    batch_size = 1 if request.batch_size is None else request.batch_size
    P["batch_size"].check(batch_size)
    seed = request.seed
    if seed is None or seed == -1:
        seed = random_seed()
    P["seed"].check(seed, " (or -1 for random)")
    negative = d.negative_prompt if request.negative_prompt is None else request.negative_prompt
    clip_skip = d.clip_skip if request.clip_skip is None else request.clip_skip
    P["clip_skip"].check(clip_skip)
    for name, weight in requested_loras(request):
        if not MIN_LORA_WEIGHT <= weight <= MAX_LORA_WEIGHT:
            raise InvalidRequest(
                f"The weight of LoRA {name} must be between {MIN_LORA_WEIGHT:g} and "
                f"{MAX_LORA_WEIGHT:g}; got {weight:g}."
            )
    cutoff = 1.0 if request.guidance_cutoff is None else float(request.guidance_cutoff)
    if not 0 < cutoff <= 1:
        raise InvalidRequest(
            "Guidance cutoff must be more than 0 and at most 1 (the share of the steps that use "
            f"guidance); got {cutoff:g}."
        )
    deep_cache = 1 if request.deep_cache is None else request.deep_cache
    P["deep_cache"].check(deep_cache, " (1: off)")
    variations = check_mode(request.variations)
    hr = _hires(request, mode, width, height, (d.width, d.height), warnings, upscalers)
    settings = GenerationSettings(
        family=family.id,
        prompt=request.prompt,
        negative_prompt=negative,
        width=width,
        height=height,
        steps=steps,
        guidance=guidance,
        sampler=sampler.id,
        seed=seed,
        batch_size=batch_size,
        clip_skip=clip_skip,
        mode=mode,
        strength=strength,
        guidance_cutoff=cutoff,
        deep_cache=deep_cache,
        variations=variations,
        **hr,
    )
    return settings, warnings


HIRES_FIELDS = ("hr_scale", "hr_resize_x", "hr_resize_y", "hr_upscaler",
                "hr_second_pass_steps", "denoising_strength")  # fmt: skip


def _hires_bounds(request: GenerationRequest) -> None:
    """The hires fix's values in their bounds, whether it is on or not."""
    resize_x, resize_y = request.hr_resize_x or 0, request.hr_resize_y or 0
    P["hr_resize_x"].check(resize_x, " (0: not used)")
    P["hr_resize_y"].check(resize_y, " (0: not used)")
    if request.hr_scale is not None:
        P["hr_scale"].check(float(request.hr_scale))
    hr_steps = request.hr_second_pass_steps or 0
    P["hr_second_pass_steps"].check(hr_steps, " (0: as many as the first pass)")
    denoise = request.denoising_strength
    if denoise is not None and not 0 < denoise <= 1:
        raise InvalidRequest(
            f"{P['denoising_strength'].label} must be more than 0 and at most 1 (how much is "
            f"redrawn); got {denoise:g}."
        )


def _hires(
    request: GenerationRequest,
    mode: str,
    width: int,
    height: int,
    native: tuple[int, int],
    warnings: list[str],
    upscalers: tuple[str, ...] = (),
) -> dict:
    """The hires fix's settings (none when it is off), checked."""
    resize_x, resize_y = request.hr_resize_x or 0, request.hr_resize_y or 0
    hr_steps = request.hr_second_pass_steps or 0
    denoise = request.denoising_strength
    sized = request.hr_scale is not None or resize_x or resize_y
    on = bool(sized) if request.enable_hr is None else request.enable_hr
    if not on:
        given = [n for n in HIRES_FIELDS[:-1] if getattr(request, n) not in (None, 0)]
        if request.enable_hr is False and given:
            warnings.append(f"enable_hr is false: {', '.join(given)} ignored.")
        if mode == TEXT_TO_IMAGE and request.denoising_strength is not None:
            warnings.append("denoising_strength is for the hires fix; it was ignored.")
        return {}
    if mode != TEXT_TO_IMAGE:
        raise InvalidRequest(
            "The hires fix is for text-to-image: with a starting picture, ask for the size "
            "you want (image-to-image redraws it at that size)."
        )
    scale = None
    if not resize_x and not resize_y:
        scale = hires.DEFAULT_SCALE if request.hr_scale is None else float(request.hr_scale)
    elif request.hr_scale is not None:
        warnings.append("A hires width or height was given: hr_scale was ignored.")
    up = hires.upscaled_size(width, height, scale, resize_x, resize_y)
    final = hires.final_size(width, height, scale, resize_x, resize_y)
    for w, h in (up, final):
        if not (MIN_SIDE <= w <= MAX_SIDE and MIN_SIDE <= h <= MAX_SIDE):
            raise InvalidRequest(
                f"The hires fix would make {w}x{h} from {width}x{height}: each side must be "
                f"between {MIN_SIDE} and {MAX_SIDE}. Lower the factor or the size."
            )
    if final[0] * final[1] <= width * height:
        warnings.append(
            f"The hires fix enlarges nothing ({width}x{height} to {final[0]}x{final[1]})."
        )
    if width * height > 1.5 * native[0] * native[1]:
        warnings.append(
            f"The hires fix's first pass is {width}x{height}, larger than {native[0]}x"
            f"{native[1]}, this model's size: make it at that size and let the fix enlarge it."
        )
    denoise = hires.DEFAULT_DENOISE if denoise is None else float(denoise)
    return {
        "hr_scale": scale,
        "hr_resize_x": resize_x,
        "hr_resize_y": resize_y,
        "hr_upscaler": hires.upscaler_name(request.hr_upscaler, upscalers),
        "hr_second_pass_steps": hr_steps,
        "denoising_strength": denoise,
    }


def with_variations(
    settings: GenerationSettings, wildcards: Path | None = None
) -> tuple[GenerationSettings, list[str]]:
    """The prompt each picture gets when the prompt has variations; ``all``: as many
    pictures as combinations. Warnings worth showing."""
    if settings.variations == OFF or not has_variations(settings.prompt):
        return settings, []
    prompts = expand(
        settings.prompt, settings.variations, settings.batch_size, settings.seed, wildcards
    )
    warnings = []
    if settings.variations == ALL and len(prompts) != settings.batch_size:
        warnings.append(f"{len(prompts)} combinations: {len(prompts)} pictures, one each.")
    return replace(settings, prompts=tuple(prompts), batch_size=len(prompts)), warnings


def requested_loras(request: GenerationRequest) -> list[tuple[str, float]]:
    """The request's LoRAs, then those its prompt's tags name (a name given twice: once)."""
    wanted = dict(request.loras)
    for name, weight in extract_lora_tags(request.prompt)[1]:
        wanted.setdefault(name, weight)
    return list(wanted.items())


def _image_mode(request: GenerationRequest, warnings: list[str]) -> tuple[str, float | None]:
    """Text-to-image, image-to-image or inpainting, and the strength it runs with."""
    if request.init_image is None:
        if request.mask_image is not None:
            raise InvalidRequest("A mask goes with a picture to repaint: give the picture too.")
        if request.strength is not None:
            warnings.append("Strength is for image-to-image and inpainting; it was ignored.")
        return TEXT_TO_IMAGE, None
    mode = INPAINT if request.mask_image is not None else IMAGE_TO_IMAGE
    strength = request.strength
    if strength is None and not request.enable_hr:
        strength = request.denoising_strength  # A1111's name for it
    strength = DEFAULT_STRENGTH[mode] if strength is None else float(strength)
    if not 0 < strength <= 1:
        raise InvalidRequest(
            f"Strength must be more than 0 and at most 1 (how much of the picture is redrawn); "
            f"got {strength:g}."
        )
    return mode, strength
