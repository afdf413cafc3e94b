"""The generation parameters, declared once.

Every front door derives its view of a request from this table: the API's request schema and
the saved preferences (``api/requests.py``, ``preferences.py``), the CLI's options
(``cli_options.py``), the A1111 metadata writer and reader (``metadata/``) and the bounds that
``request.resolve`` checks; the web page's form is checked against it by a test. Adding a
parameter means a row here, a field of ``GenerationRequest`` and ``GenerationSettings``, and the
engine code that uses it.

The prompt, LoRAs and input pictures are not rows: each has a shape of its own (a positional
argument, a list of (name, weight), an upload) and its own code in every layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from sfumato.errors import InvalidRequest

# where a value left out comes from
MODEL = "the model's recommended value"  # the user's preference, then the model card's
RANDOM = "random"
OFF = "off"

MAX_SEED = 2**64 - 1  # torch generators take 64-bit seeds; ComfyUI users paste such seeds


@dataclass(frozen=True)
class Parameter:
    name: str  # the field of a request, of the settings and of the API's JSON
    kind: type  # int, float or str
    label: str  # how a sentence names it ("Steps must be between ...")
    help: str  # one line, for the CLI's --help and the API's schema
    flags: tuple[str, ...]  # the CLI's option names, the long one first
    minimum: float | None = None
    maximum: float | None = None
    multiple_of: int | None = None
    default: str = MODEL
    # the value that means "not used": metadata leaves such a value out, as A1111 does
    neutral: float | None = None
    a1111: str | None = None  # its key in A1111's ``parameters`` text (None: written apart)
    per_family: bool = False  # a saved preference, kept per model family
    max_length: int | None = None  # text

    def number(self, value) -> str:
        """``value`` as the user would write it (10, not 10.0; 0.5; a whole 64-bit seed)."""
        if self.kind is str:
            return str(value)
        return str(int(value)) if self.kind is int else f"{value:g}"

    @property
    def bounds(self) -> str:
        """The range as a sentence ends it: "between 1 and 150"."""
        return f"between {self.number(self.minimum)} and {self.number(self.maximum)}"

    def check(self, value, hint: str = "") -> None:
        """Refuse a value outside the bounds with a sentence that names them."""
        grid = f"a multiple of {self.multiple_of} " if self.multiple_of else ""
        if (self.minimum is not None and not self.minimum <= value <= self.maximum) or (
            grid and value % self.multiple_of
        ):
            raise InvalidRequest(
                f"{self.label} must be {grid}{self.bounds}{hint}; got {self.number(value)}."
            )

    def schema(self) -> dict:
        """The bounds as JSON Schema keywords, for documentation (``resolve`` enforces them
        with a sentence, so the API does not refuse them a second way)."""
        keys = {"minimum": self.minimum, "maximum": self.maximum, "multipleOf": self.multiple_of}
        return {k: v for k, v in keys.items() if v is not None}


MAX_PROMPT_CHARS = 10_000
# the autoencoders of every family work on 8x8 blocks of pixels
SIDE = {"minimum": 64, "maximum": 2048, "multiple_of": 8, "per_family": True}

PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        "negative_prompt",
        str,
        "The negative prompt",
        "What the picture should not show. Default: the model's own (SD 1.5 has one; XL "
        'models none). "" for none.',
        ("--negative", "-n"),
        per_family=True,
        max_length=MAX_PROMPT_CHARS,
    ),
    Parameter(
        "width",
        int,
        "Width",
        "Width in pixels, a multiple of 8 (64-2048). Default: the model's native size.",
        ("--width", "-W"),
        **SIDE,
    ),
    Parameter(
        "height",
        int,
        "Height",
        "Height in pixels, a multiple of 8 (64-2048).",
        ("--height", "-H"),
        **SIDE,
    ),
    Parameter(
        "steps",
        int,
        "Steps",
        "Denoising steps. More is slower, and past a point no better.",
        ("--steps", "-s"),
        minimum=1,
        maximum=150,
        a1111="Steps",
        per_family=True,
    ),
    Parameter(
        "guidance",
        float,
        "Guidance",
        "How strictly to follow the prompt (CFG scale, 0-30).",
        ("--guidance", "--cfg", "-g"),
        minimum=0,
        maximum=30,
        a1111="CFG scale",
        per_family=True,
    ),
    Parameter(
        "sampler",
        str,
        "The sampler",
        "Sampler name or id, e.g. 'DPM++ 2M Karras' or euler_a. See `sfumato samplers`.",
        ("--sampler",),
        per_family=True,
        max_length=64,
    ),
    Parameter(
        "seed",
        int,
        "The seed",
        "Same seed and settings, same picture. Default: random (printed); -1: random.",
        ("--seed",),
        minimum=0,
        maximum=MAX_SEED,
        default=RANDOM,
        a1111="Seed",
    ),
    Parameter(
        "batch_size",
        int,
        "The number of images",
        "How many pictures; they use seed, seed+1, ...",
        ("--batch", "-b"),
        minimum=1,
        maximum=16,
        default="1",
    ),
    Parameter(
        "clip_skip",
        int,
        "Clip skip",
        "Skip the last CLIP layers, counted as A1111 does (1 = none; anime models often want "
        "2). Default: the model's.",
        ("--clip-skip",),
        minimum=1,
        maximum=12,  # CLIP ViT-L has 12 layers
        neutral=1,
        a1111="Clip skip",
    ),
    Parameter(
        "strength",
        float,
        "Strength",
        "How much of the starting picture is redrawn, more than 0 and at most 1 (default "
        "0.75; inpainting 1).",
        ("--strength",),
        minimum=0,  # exclusive: ``resolve`` says so
        maximum=1,
        a1111="Denoising strength",
    ),
    # the hires fix (``engine/hires.py``), with A1111's names and meaning: on when a factor
    # or a size is given (or ``enable_hr``, which is not a row: the CLI has no use for it)
    Parameter(
        "denoising_strength",
        float,
        "Denoising strength",
        "How much the hires fix's second pass redraws, more than 0 and at most 1 (default "
        "0.7). With a starting picture and no --strength, A1111's name for the strength.",
        ("--hires-denoise",),
        minimum=0,  # exclusive: ``resolve`` says so
        maximum=1,
        default="0.7",
        a1111="Denoising strength",
    ),
    Parameter(
        "hr_scale",
        float,
        "Hires upscale",
        "Hires fix: make the picture at the model's size, enlarge it by this factor (1-4) and "
        "redraw it at the larger size (A1111's hr_scale).",
        ("--hires",),
        minimum=1,
        maximum=4,
        default=OFF,
        a1111="Hires upscale",
    ),
    Parameter(
        "hr_resize_x",
        int,
        "Hires width",
        "Hires fix to this width rather than by a factor (with --hires-height: cropped to fit; "
        "0: from the height's proportions).",
        ("--hires-width",),
        minimum=0,
        maximum=SIDE["maximum"],
        multiple_of=8,
        default=OFF,
        neutral=0,
    ),
    Parameter(
        "hr_resize_y",
        int,
        "Hires height",
        "Hires fix to this height rather than by a factor.",
        ("--hires-height",),
        minimum=0,
        maximum=SIDE["maximum"],
        multiple_of=8,
        default=OFF,
        neutral=0,
    ),
    Parameter(
        "hr_second_pass_steps",
        int,
        "Hires steps",
        "Steps of the hires fix's second pass, run exactly (0: as many as the first pass).",
        ("--hires-steps",),
        minimum=0,
        maximum=150,
        default="0",
        neutral=0,
        a1111="Hires steps",
    ),
    Parameter(
        "hr_upscaler",
        str,
        "The hires upscaler",
        "How the hires fix enlarges: Latent (default), Latent (antialiased), Latent (bicubic), "
        "Latent (bicubic antialiased), Latent (nearest), Latent (nearest-exact), Lanczos, "
        "Nearest or None (a plain Lanczos resize).",
        ("--hires-upscaler",),
        default="Latent",
        max_length=64,
        a1111="Hires upscaler",
    ),
    Parameter(
        "variations",
        str,
        "Variations",
        "How a prompt's {red|green|blue} choices and __wildcards__ are made: random (each "
        "picture its own draw, from its seed), all (every combination, a picture each) or "
        "off (braces as text). Default random.",
        ("--variations",),
        default=RANDOM,
        max_length=8,
    ),
    Parameter(
        "guidance_cutoff",
        float,
        "Guidance cutoff",
        "Faster, slightly different pictures: guidance runs only in this share of the steps "
        "(e.g. 0.6); the later steps cost half. Default 1 (all).",
        ("--guidance-cutoff",),
        minimum=0,  # exclusive: ``resolve`` says so
        maximum=1,
        default=OFF,
        neutral=1,
        a1111="Guidance cutoff",
    ),
    Parameter(
        "deep_cache",
        int,
        "DeepCache interval",
        "Faster, slightly different pictures: run the whole model only every N steps and "
        "reuse its deep features between (DeepCache; 2 or 3). Default 1 (off).",
        ("--deep-cache",),
        minimum=1,
        maximum=10,
        default=OFF,
        neutral=1,
        a1111="DeepCache interval",
    ),
)
BY_NAME = {p.name: p for p in PARAMETERS}
PER_FAMILY = tuple(p for p in PARAMETERS if p.per_family)
