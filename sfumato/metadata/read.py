"""Read how a picture was made, whichever tool made it, into one normalised structure.

- sfumato's own JSON (a ``sfumato`` PNG chunk, or the EXIF MakerNote of a JPEG/WebP).
- A1111, Forge and SD.Next: the ``parameters`` text (PNG chunk, or EXIF UserComment). Parsed
  here rather than by sd-parsers, whose reader splits the settings line at every comma and so
  breaks quoted values such as ``Lora hashes: "a: 1f2e, b: 3c4d"``; this follows A1111's own
  rules: the last line holds ``key: value`` pairs, values with commas are JSON-quoted, lines
  before it are the prompt, and from ``Negative prompt:`` on, the negative prompt.
- ComfyUI, InvokeAI, Fooocus and NovelAI through sd-parsers, which follows ComfyUI's graph from
  the sampler back to its prompts and checkpoint; the size (the sampler's empty latent) and the
  LoRA loaders on the way are read here from the same graph, which sd-parsers leaves out.
"""

from __future__ import annotations

import io
import json
import math
import re
import struct
import zlib
from dataclasses import asdict, dataclass, field, fields
from itertools import accumulate
from pathlib import Path

from PIL import Image, PngImagePlugin, UnidentifiedImageError

from sfumato.engine.images import MAX_INPUT_PIXELS
from sfumato.engine.parameters import PARAMETERS
from sfumato.errors import InvalidRequest, NoGenerationData
from sfumato.metadata.files import EXIF_IFD, JSON_KEY, MAKER_NOTE, USER_COMMENT

# Hostile pictures are read in bounded time and memory: every pattern below is linear (no
# nested or overlapping quantifiers), text is read up to these sizes, JSON up to this depth.
MAX_TEXT_TOTAL = 4_000_000  # characters of text kept from one picture, all chunks together
MAX_SETTINGS_LINE = 65_536  # A1111's settings line; a real one is a few hundred characters
MAX_JSON_DEPTH = 64
_KEY = re.compile(r"\w[\w \-/+.()]*")  # a settings key, as A1111 writes them
_QUOTED = re.compile(r'(?:\\.|[^\\"])*"')  # the rest of a JSON string, to its closing quote
_SIZE = re.compile(r"^\s*(\d{1,9})\s*x\s*(\d{1,9})\s*$")
_LORA_TAG = re.compile(
    r"<(?:lora|lyco):([^:>]{1,128})(?::([+-]?[.\d]{1,32}))?(?::[^>]{0,64})?>", re.IGNORECASE
)
_JSON_STRING = re.compile(r'"(?:\\.|[^\\"])*"')
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_INT_RANGE = (-(2**63), 2**64 - 1)  # a seed is at most an unsigned 64-bit number (ComfyUI's)
_PNG = b"\x89PNG\r\n\x1a\n"


@dataclass
class GenerationInfo:
    """What a picture says about how it was made; None where it does not say."""

    tool: str  # "sfumato", "A1111", "ComfyUI", "InvokeAI", "Fooocus", ...
    prompt: str = ""
    negative_prompt: str = ""
    seed: int | None = None
    steps: int | None = None
    guidance: float | None = None
    sampler: str | None = None  # as the tool names it, e.g. "DPM++ 2M Karras"
    scheduler: str | None = None  # a schedule named apart ("Karras", ComfyUI's "karras")
    width: int | None = None
    height: int | None = None
    model: str | None = None
    model_hash: str | None = None
    loras: list[dict] = field(default_factory=list)  # {"name", "weight", "hash"}
    strength: float | None = None  # image-to-image's denoising strength, when it was one
    clip_skip: int | None = None
    guidance_cutoff: float | None = None  # sfumato's shortcuts, where they were on
    deep_cache: int | None = None
    # the hires fix, where there was one (A1111's names; ``strength`` stays image-to-image's)
    hr_scale: float | None = None
    hr_resize_x: int | None = None
    hr_resize_y: int | None = None
    hr_upscaler: str | None = None
    hr_second_pass_steps: int | None = None
    denoising_strength: float | None = None
    extra: dict = field(default_factory=dict)  # every other setting the tool wrote

    def to_dict(self) -> dict:
        return asdict(self)


_INFO_FIELDS = {f.name for f in fields(GenerationInfo)}


def read_info(path: Path) -> GenerationInfo:
    """How the picture at ``path`` was made; ``NoGenerationData`` when it does not say."""
    return _open(Path(path), Path(path).name)


def read_info_bytes(content: bytes) -> GenerationInfo:
    """The same, for a picture's file content (an upload)."""
    return _open(content, "The file")


def _open(source: Path | bytes, name: str) -> GenerationInfo:
    return _read(read_texts(source, name))


def read_texts(source: Path | bytes, name: str = "The file") -> dict[str, str]:
    """A picture's text metadata by key: its PNG text chunks, or the EXIF fields where JPEG
    and WebP keep A1111's ``parameters`` and our ``sfumato`` JSON.

    Never decodes the pixels: PNG text is read by walking the file's chunks, EXIF from the
    header Pillow reads on opening."""
    try:
        with (
            open(source, "rb") if isinstance(source, Path) else io.BytesIO(source) as file,
            Image.open(file) as image,
        ):
            if image.width * image.height > MAX_INPUT_PIXELS:  # never decode a bomb
                raise InvalidRequest(f"{name} is too large a picture to read.")
            return _texts(image, file)
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise InvalidRequest(f"{name} is not a picture sfumato can read ({e}).") from None


def _read(texts: dict[str, str]) -> GenerationInfo:
    if (own := _json(texts.get(JSON_KEY))) and (info := _from_sfumato(own)):
        return _checked(info)
    if (parameters := texts.get("parameters")) and (info := parse_a1111(parameters)):
        return info
    if info := _from_sd_parsers(texts):
        return _checked(info)
    if (graph := _json(texts.get("prompt"))) and (info := _from_comfy_graph(graph)):
        return _checked(info)
    raise NoGenerationData("There is no generation data in this image.")


def _texts(image: Image.Image, file) -> dict[str, str]:
    """PNG text chunks, or the EXIF fields where JPEG and WebP keep them."""
    texts = png_texts(file) if image.format == "PNG" else {}
    exif = {}
    # a PNG's EXIF is read without the pixels only when it comes before them
    if image.format != "PNG" or "exif" in image.info:
        try:
            exif = image.getexif().get_ifd(EXIF_IFD)
        except Exception:  # noqa: BLE001 (a malformed EXIF block is as good as none)
            exif = {}
    if (comment := exif.get(USER_COMMENT)) and "parameters" not in texts:
        texts["parameters"] = _user_comment(comment)
    if (note := exif.get(MAKER_NOTE)) and JSON_KEY not in texts:
        texts[JSON_KEY] = note.decode("utf-8", "replace") if isinstance(note, bytes) else note
    limit = PngImagePlugin.MAX_TEXT_CHUNK
    return {k: v for k, v in texts.items() if isinstance(v, str) and len(v) <= limit}


def png_texts(file) -> dict[str, str]:
    """A PNG's tEXt, zTXt and iTXt chunks, wherever they are, without decoding the pixels.

    Bounded as Pillow bounds its own reads: a chunk is read or inflated up to
    ``PngImagePlugin.MAX_TEXT_CHUNK`` (1 MB; a larger one is skipped, never inflated further),
    and at most ``MAX_TEXT_TOTAL`` characters are kept from all chunks together."""
    file.seek(0)
    if file.read(8) != _PNG:
        return {}
    limit, texts, total = PngImagePlugin.MAX_TEXT_CHUNK, {}, 0
    while len(head := file.read(8)) == 8:  # each turn moves on at least 12 bytes
        length, kind = struct.unpack(">I4s", head)
        if kind == b"IEND":
            break
        if kind not in (b"tEXt", b"zTXt", b"iTXt") or length > limit:
            file.seek(length + 4, io.SEEK_CUR)  # the data and its CRC
            continue
        data = file.read(length)
        file.seek(4, io.SEEK_CUR)
        if (item := _png_text(kind, data, limit)) and total + len(item[1]) <= MAX_TEXT_TOTAL:
            texts[item[0]] = item[1]
            total += len(item[1])
    return texts


def _png_text(kind: bytes, data: bytes, limit: int) -> tuple[str, str] | None:
    key, _, rest = data.partition(b"\0")
    try:
        if kind == b"tEXt":
            return key.decode("latin-1"), rest.decode("latin-1")
        if kind == b"zTXt":
            value = _inflate(rest[1:], limit) if rest[:1] == b"\0" else None
            return (key.decode("latin-1"), value.decode("latin-1")) if value is not None else None
        compressed, method, rest = rest[:1], rest[1:2], rest[2:]
        _language, _, rest = rest.partition(b"\0")
        _translated, _, value = rest.partition(b"\0")
        if compressed == b"\1":
            value = _inflate(value, limit) if method == b"\0" else None
        return (key.decode("latin-1"), value.decode("utf-8")) if value is not None else None
    except UnicodeDecodeError:
        return None


def _inflate(data: bytes, limit: int) -> bytes | None:
    """At most ``limit`` bytes out, however well the chunk compresses; None past it."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit)
    except zlib.error:
        return None
    return None if inflater.unconsumed_tail else out


def _user_comment(value: bytes | str) -> str:
    """EXIF UserComment: an 8-byte charset code, then the text (A1111 writes UTF-16)."""
    if isinstance(value, str):
        return value
    code, body = value[:8], value[8:]
    if code.startswith(b"UNICODE"):
        # piexif writes big-endian; some tools little-endian: ASCII text shows which
        if body[:1] == b"\0" or len(body) < 2:
            return body.decode("utf-16-be", "replace")
        return body.decode("utf-16-le", "replace")
    return body.decode("utf-8", "replace").rstrip("\0")


def _json(raw) -> dict | None:
    """A JSON object, or None: never deeper than ``MAX_JSON_DEPTH``, and NaN, Infinity and
    numbers too large for a float read as null."""
    if not isinstance(raw, str) or not raw or not _shallow(raw):
        return None
    try:
        data = json.loads(raw, parse_constant=lambda _: None, parse_float=_finite_float)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _shallow(raw: str) -> bool:
    """Whether the brackets of this JSON text nest at most ``MAX_JSON_DEPTH`` deep (in linear
    time, before the parser sees it)."""
    brackets = _NOT_BRACKETS.sub("", _JSON_STRING.sub("", raw))
    return max(accumulate(1 if c in "[{" else -1 for c in brackets), default=0) <= MAX_JSON_DEPTH


def _finite_float(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None


def _number(value, kind=float):
    """A finite float or an int in range, else None (NaN, inf, 1e999, "x", a list, a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = kind(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if kind is float:
        return number if math.isfinite(number) else None
    if kind is int:
        return number if _INT_RANGE[0] <= number <= _INT_RANGE[1] else None
    return number


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def _plain(value):
    """A JSON-safe value for ``extra``: strings, finite numbers, booleans, None; anything else
    as its JSON text."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, (int, float)):
        return _number(value, type(value))
    try:
        return json.dumps(value, allow_nan=False, default=str)[:10_000]
    except (ValueError, RecursionError):
        return None


def _checked(info: GenerationInfo) -> GenerationInfo:
    """Every field of the type it says, every number finite and in range, whatever the
    picture claimed: the answer always serialises as strict JSON."""
    for f in fields(GenerationInfo):
        value = getattr(info, f.name)
        if f.name in ("prompt", "negative_prompt", "tool"):
            setattr(info, f.name, value if isinstance(value, str) else "")
        elif f.type == "str | None":
            setattr(info, f.name, _text(value))
        elif f.type == "int | None":
            setattr(info, f.name, _number(value, int))
        elif f.type == "float | None":
            setattr(info, f.name, _number(value))
    info.loras = [
        {
            "name": lora["name"],
            "weight": _number(lora.get("weight")),
            "hash": _text(lora.get("hash")),
        }
        for lora in (info.loras if isinstance(info.loras, list) else [])
        if isinstance(lora, dict) and isinstance(lora.get("name"), str)
    ]
    extra = info.extra if isinstance(info.extra, dict) else {}
    info.extra = {str(k): _plain(v) for k, v in extra.items()}
    return info


def _from_sfumato(data: dict) -> GenerationInfo | None:
    s = data.get("settings")
    if not isinstance(s, dict):
        return None
    model = data.get("model") if isinstance(data.get("model"), dict) else {}
    loras = s.get("loras") if isinstance(s.get("loras"), list) else []
    # our settings use the parameter table's names, as GenerationInfo does
    values = {
        p.name: _number(s.get(p.name), p.kind) if p.kind is not str else s.get(p.name)
        for p in PARAMETERS
        if p.name in _INFO_FIELDS
    }
    return GenerationInfo(
        tool="sfumato",
        prompt=_text(s.get("prompt")) or "",
        **values | {"negative_prompt": _text(s.get("negative_prompt")) or ""},
        model=model.get("name"),
        model_hash=model.get("hash"),
        loras=[
            {"name": lora[0], "weight": _number(lora[1]), "hash": lora[2]}
            for lora in loras
            if isinstance(lora, list) and len(lora) == 3
        ],
        extra={
            "family": s.get("family"),
            "generator": data.get("generator"),
            "backend": model.get("backend"),  # what ran its UNet: openvino, openvino int8, torch
            "template": _text(s.get("prompt_template")),  # the prompt's, with its variations
            **_upscale(data.get("upscale")),
        },
    )


def _upscale(upscale) -> dict[str, str]:
    """An upscaled picture's upscale under A1111's infotext keys (its extras tab's)."""
    if not isinstance(upscale, dict) or _number(upscale.get("scale")) is None:
        return {}
    return {
        "Postprocess upscale by": f"{_number(upscale.get('scale')):g}",
        "Postprocess upscaler": _text(upscale.get("upscaler")) or "?",
    }


def _settings_line(line: str) -> dict[str, str]:
    """A1111's ``key: value, key: value`` line, in one pass (a value with a comma or colon is
    JSON-quoted); a line longer than any real one is not a settings line."""
    if len(line) > MAX_SETTINGS_LINE:
        return {}
    pairs, at, quotes = {}, 0, True
    while (colon := line.find(":", at)) >= 0:
        key = line[at:colon].rpartition(",")[2].strip()  # text before a key is not a pair
        start = colon + 1
        while start < len(line) and line[start].isspace():
            start += 1
        value = None
        if quotes and line.startswith('"', start):
            if quoted := _QUOTED.match(line, start + 1):
                raw = line[start : quoted.end()]
                try:
                    value = json.loads(raw)
                except (ValueError, RecursionError):
                    value = raw[1:-1]
                at = line.find(",", quoted.end())
                at = len(line) if at < 0 else at + 1
            else:
                quotes = False  # no closing quote to the end: never look for one again
        if value is None:
            end = line.find(",", start)
            end = len(line) if end < 0 else end
            value, at = line[start:end], end + 1
        if _KEY.fullmatch(key):
            pairs[key] = value.strip() if isinstance(value, str) else str(value)
    return pairs


def parse_a1111(text: str) -> GenerationInfo | None:
    """A1111's ``parameters`` text; None if it is not one."""
    lines = text.strip().split("\n")
    settings = _settings_line(lines[-1]) if lines else {}
    if len(settings) < 3 or "Steps" not in settings:
        return None
    prompt_lines, negative_lines, in_negative = [], [], False
    for line in lines[:-1]:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line.removeprefix("Negative prompt:").lstrip()
        (negative_lines if in_negative else prompt_lines).append(line)
    prompt = "\n".join(prompt_lines).strip()
    info = GenerationInfo(
        tool="A1111",
        prompt=prompt,
        negative_prompt="\n".join(negative_lines).strip(),
    )
    s = dict(settings)
    for p in PARAMETERS:
        if p.a1111 and p.kind is str:
            setattr(info, p.name, s.pop(p.a1111, None))
        elif p.a1111:
            setattr(info, p.name, _number(s.pop(p.a1111, None), p.kind))
    if resize := _SIZE.match(s.pop("Hires resize", "")):
        info.hr_resize_x, info.hr_resize_y = int(resize.group(1)), int(resize.group(2))
    if info.hr_scale or info.hr_resize_x or info.hr_resize_y or info.hr_upscaler:
        # "Denoising strength" is the hires fix's in a text-to-image picture
        info.denoising_strength, info.strength = info.strength, None
    info.sampler = s.pop("Sampler", None)
    info.scheduler = s.pop("Schedule type", None)
    if size := _SIZE.match(s.pop("Size", "")):
        info.width, info.height = int(size.group(1)), int(size.group(2))
    info.model = s.pop("Model", None)
    info.model_hash = s.pop("Model hash", None)
    hashes = {}
    for item in s.pop("Lora hashes", "").split(","):
        name, _, value = item.partition(":")
        if name.strip() and value.strip():
            hashes[name.strip()] = value.strip()
    info.loras = [
        {"name": name, "weight": weight, "hash": hashes.get(name)}
        for name, weight in _lora_tags(prompt)
    ]
    if version := s.get("Version", ""):
        info.tool = "Forge" if version.startswith("f") else info.tool
    info.extra = s
    return _checked(info)


def _lora_tags(prompt: str) -> list[tuple[str, float | None]]:
    """The prompt's ``<lora:name:weight>`` tags (weight 1 if left out), each tag's parts
    bounded so that the scan stays linear."""
    return [
        (m.group(1).strip(), _number(m.group(2)) if m.group(2) else 1.0)
        for m in _LORA_TAG.finditer(prompt)
    ]


def _from_sd_parsers(texts: dict[str, str]) -> GenerationInfo | None:
    """sd-parsers' parsers, given the text already read (its own manager would decode the
    pixels to find it); JSON deeper than ``MAX_JSON_DEPTH`` is kept from them."""
    from sd_parsers.parsers import MANAGED_PARSERS, AUTOMATIC1111Parser

    texts = {k: v for k, v in texts.items() if v[:1] not in "[{" or _shallow(v)}
    # not its A1111 parser: parse_a1111 reads that text, and sd-parsers' searches it with a
    # pattern quadratic in its length (100,000 "Hashes: {" took 96 s)
    for parser in (p for p in MANAGED_PARSERS if p is not AUTOMATIC1111Parser):
        try:
            parsed = parser().parse(dict(texts))
            info = _from_parsed(parsed) if parsed is not None and parsed.samplers else None
        except Exception:  # noqa: BLE001 (a malformed chunk must never end the read)
            continue
        if info is not None:
            return info
    return None


def _from_parsed(parsed) -> GenerationInfo:
    sampler = parsed.samplers[0]
    p = sampler.parameters
    info = GenerationInfo(
        tool=getattr(parsed.generator, "value", str(parsed.generator)),
        prompt=parsed.full_prompt,
        negative_prompt=parsed.full_negative_prompt,
        seed=_number(p.get("seed") or p.get("noise_seed"), int),
        steps=_number(p.get("steps"), int),
        guidance=_number(p.get("cfg_scale")),
        sampler=sampler.name,
        scheduler=p.get("scheduler"),
        strength=_number(p.get("denoise") or p.get("strength")),
        width=_number(p.get("width") or parsed.metadata.get("width"), int),
        height=_number(p.get("height") or parsed.metadata.get("height"), int),
        model=sampler.model.name if sampler.model else None,
        model_hash=sampler.model.hash if sampler.model else None,
    )
    if info.strength == 1.0 and info.tool == "ComfyUI":
        info.strength = None  # a full denoise is plain text-to-image
    resolution = str(parsed.metadata.get("resolution"))[:100]
    if info.width is None and (size := re.findall(r"\d+", resolution)):
        info.width, info.height = _number(size[0], int), _number(size[-1], int)  # Fooocus
    raw = parsed.raw_parameters
    if info.tool == "ComfyUI":
        graph = raw.get("prompt")
        graph = _json(graph) if isinstance(graph, str) else graph
        if isinstance(graph, dict):
            _comfy_extras(info, graph, sampler.sampler_id)
    if info.model is None and (invoke := _json(raw.get("invokeai_metadata"))):
        model = invoke.get("model")  # InvokeAI 4 and later: {"name": ..., "hash": ...}
        if isinstance(model, dict):
            info.model, info.model_hash = model.get("name"), model.get("hash")
    return info


def _comfy_extras(info: GenerationInfo, graph: dict, sampler_id: str | None) -> None:
    """Size, checkpoint and LoRAs from a ComfyUI graph: the sampler's latent, and the loaders
    on the model's path to the sampler."""
    node = graph.get(str(sampler_id)) if sampler_id is not None else None
    if not isinstance(node, dict):
        return
    inputs = _inputs(node)
    latent = _inputs(_linked(graph, inputs.get("latent_image")))
    if "width" in latent:
        info.width = _number(latent["width"], int)
        info.height = _number(latent.get("height"), int)
    seen = set()
    current = _linked(graph, inputs.get("model"))
    while current and id(current) not in seen:
        seen.add(id(current))
        ins = _inputs(current)
        for key in ("ckpt_name", "unet_name"):  # the loader at the start of the chain
            if isinstance(ins.get(key), str):
                info.model = ins[key]  # (sd-parsers names a link here when LoRAs sit between)
        if "lora_name" in ins:
            name = Path(str(ins["lora_name"])).stem
            info.loras.append(
                {"name": name, "weight": _number(ins.get("strength_model")), "hash": None}
            )
        current = _linked(graph, ins.get("model"))


def _inputs(node) -> dict:
    """A ComfyUI node's inputs; {} where the node or its inputs are not what ComfyUI writes."""
    inputs = node.get("inputs") if isinstance(node, dict) else None
    return inputs if isinstance(inputs, dict) else {}


def _linked(graph: dict, link) -> dict | None:
    """The node a ComfyUI input ``[node_id, output_index]`` comes from."""
    if isinstance(link, list) and link and isinstance(link[0], (str, int)):
        node = graph.get(str(link[0]))
        return node if isinstance(node, dict) else None
    return None


def _from_comfy_graph(graph: dict) -> GenerationInfo | None:
    """A ComfyUI prompt graph without the UI's workflow (pictures saved through its API),
    which sd-parsers does not read: the first node with a sampler's inputs, followed back."""
    for node_id, node in graph.items():
        ins = _inputs(node)
        if not {"steps", "cfg", "sampler_name"} <= ins.keys():
            continue
        info = GenerationInfo(
            tool="ComfyUI",
            prompt=_comfy_text(graph, ins.get("positive")),
            negative_prompt=_comfy_text(graph, ins.get("negative")),
            seed=_number(ins.get("seed", ins.get("noise_seed")), int),
            steps=_number(ins.get("steps"), int),
            guidance=_number(ins.get("cfg")),
            sampler=_text(ins.get("sampler_name")),
            scheduler=_text(ins.get("scheduler")),
            strength=_number(ins.get("denoise")),
        )
        if info.strength == 1.0:
            info.strength = None
        _comfy_extras(info, graph, node_id)
        return info
    return None


def _comfy_text(graph: dict, link) -> str:
    """The text of the prompt node a conditioning input comes from."""
    node = _linked(graph, link)
    for _ in range(8):  # through a few conditioning nodes at most
        if node is None:
            return ""
        ins = _inputs(node)
        for key in ("text", "text_g", "positive"):
            if isinstance(ins.get(key), str):
                return ins[key]
        node = _linked(graph, ins.get("conditioning") or ins.get("conditioning_1"))
    return ""
