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
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from sfumato.engine.images import MAX_INPUT_PIXELS
from sfumato.engine.parameters import PARAMETERS
from sfumato.engine.prompts import extract_lora_tags
from sfumato.errors import InvalidRequest, NoGenerationData
from sfumato.metadata.files import EXIF_IFD, JSON_KEY, MAKER_NOTE, USER_COMMENT

# one "key: value" pair of A1111's settings line; a value is JSON-quoted when it has , or :
_PARAM = re.compile(r'\s*([\w][\w \-/+.()]*?):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')
_SIZE = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*$")


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
    extra: dict = field(default_factory=dict)  # every other setting the tool wrote

    def to_dict(self) -> dict:
        return asdict(self)


_INFO_FIELDS = {f.name for f in fields(GenerationInfo)}


def read_info(path: Path) -> GenerationInfo:
    """How the picture at ``path`` was made; ``NoGenerationData`` when it does not say."""
    return _open(path, Path(path).name)


def read_info_bytes(content: bytes) -> GenerationInfo:
    """The same, for a picture's file content (an upload)."""
    return _open(io.BytesIO(content), "The file")


def _open(file, name: str) -> GenerationInfo:
    try:
        with Image.open(file) as image:
            if image.width * image.height > MAX_INPUT_PIXELS:  # never decode a bomb
                raise InvalidRequest(f"{name} is too large a picture to read.")
            image.load()  # PNG text after the pixels is read only now
            return _read(image)
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise InvalidRequest(f"{name} is not a picture sfumato can read ({e}).") from None


def _read(image: Image.Image) -> GenerationInfo:
    texts = _texts(image)
    if (own := _json(texts.get(JSON_KEY))) and (info := _from_sfumato(own)):
        return info
    if (parameters := texts.get("parameters")) and (info := parse_a1111(parameters)):
        return info
    if info := _from_sd_parsers(image):
        return info
    if (graph := _json(texts.get("prompt"))) and (info := _from_comfy_graph(graph)):
        return info
    raise NoGenerationData("There is no generation data in this image.")


def _texts(image: Image.Image) -> dict[str, str]:
    """PNG text chunks, or the EXIF fields where JPEG and WebP keep them."""
    texts = {k: v for k, v in getattr(image, "text", {}).items() if isinstance(v, str)}
    try:
        exif = image.getexif().get_ifd(EXIF_IFD)
    except Exception:  # noqa: BLE001 (a malformed EXIF block is as good as none)
        exif = {}
    if (comment := exif.get(USER_COMMENT)) and "parameters" not in texts:
        texts["parameters"] = _user_comment(comment)
    if (note := exif.get(MAKER_NOTE)) and JSON_KEY not in texts:
        texts[JSON_KEY] = note.decode("utf-8", "replace") if isinstance(note, bytes) else note
    return texts


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


def _json(raw: str | None) -> dict | None:
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _number(value, kind=float):
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None


def _from_sfumato(data: dict) -> GenerationInfo | None:
    s = data.get("settings")
    if not isinstance(s, dict):
        return None
    model = data.get("model") if isinstance(data.get("model"), dict) else {}
    # our settings use the parameter table's names, as GenerationInfo does
    values = {
        p.name: _number(s.get(p.name), p.kind) if p.kind is not str else s.get(p.name)
        for p in PARAMETERS
        if p.name in _INFO_FIELDS
    }
    return GenerationInfo(
        tool="sfumato",
        prompt=str(s.get("prompt", "")),
        **values | {"negative_prompt": str(s.get("negative_prompt", ""))},
        model=model.get("name"),
        model_hash=model.get("hash"),
        loras=[
            {"name": lora[0], "weight": _number(lora[1]), "hash": lora[2]}
            for lora in s.get("loras") or []
            if isinstance(lora, list) and len(lora) == 3
        ],
        extra={
            "family": s.get("family"),
            "generator": data.get("generator"),
            "backend": model.get("backend"),  # what ran its UNet: openvino, openvino int8, torch
        },
    )


def _settings_line(line: str) -> dict[str, str]:
    pairs = {}
    for key, value in _PARAM.findall(line):
        if value.startswith('"') and value.endswith('"') and len(value) > 1:
            try:
                value = json.loads(value)
            except ValueError:
                value = value[1:-1]
        pairs[key.strip()] = value.strip() if isinstance(value, str) else str(value)
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
        if p.a1111:
            setattr(info, p.name, _number(s.pop(p.a1111, None), p.kind))
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
        for name, weight in extract_lora_tags(prompt)[1]
    ]
    if version := s.get("Version", ""):
        info.tool = "Forge" if version.startswith("f") else info.tool
    info.extra = s
    return info


def _from_sd_parsers(image: Image.Image) -> GenerationInfo | None:
    from sd_parsers import ParserManager

    try:
        parsed = ParserManager().parse(image)
    except Exception:  # noqa: BLE001 (a malformed chunk must never end the read)
        return None
    if parsed is None or not parsed.samplers:
        return None
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
    if info.width is None and (size := re.findall(r"\d+", str(parsed.metadata.get("resolution")))):
        info.width, info.height = int(size[0]), int(size[-1])  # Fooocus: "(1024, 1024)"
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
    inputs = node.get("inputs", {})
    latent = _linked(graph, inputs.get("latent_image"))
    if latent and "width" in latent.get("inputs", {}):
        info.width = _number(latent["inputs"]["width"], int)
        info.height = _number(latent["inputs"].get("height"), int)
    seen = set()
    current = _linked(graph, inputs.get("model"))
    while current and id(current) not in seen:
        seen.add(id(current))
        ins = current.get("inputs", {})
        for key in ("ckpt_name", "unet_name"):  # the loader at the start of the chain
            if isinstance(ins.get(key), str):
                info.model = ins[key]  # (sd-parsers names a link here when LoRAs sit between)
        if "lora_name" in ins:
            name = Path(str(ins["lora_name"])).stem
            info.loras.append(
                {"name": name, "weight": _number(ins.get("strength_model")), "hash": None}
            )
        current = _linked(graph, ins.get("model"))


def _linked(graph: dict, link) -> dict | None:
    """The node a ComfyUI input ``[node_id, output_index]`` comes from."""
    if isinstance(link, list) and link:
        node = graph.get(str(link[0]))
        return node if isinstance(node, dict) else None
    return None


def _from_comfy_graph(graph: dict) -> GenerationInfo | None:
    """A ComfyUI prompt graph without the UI's workflow (pictures saved through its API),
    which sd-parsers does not read: the first node with a sampler's inputs, followed back."""
    for node_id, node in graph.items():
        ins = node.get("inputs", {}) if isinstance(node, dict) else {}
        if not {"steps", "cfg", "sampler_name"} <= ins.keys():
            continue
        info = GenerationInfo(
            tool="ComfyUI",
            prompt=_comfy_text(graph, ins.get("positive")),
            negative_prompt=_comfy_text(graph, ins.get("negative")),
            seed=_number(ins.get("seed", ins.get("noise_seed")), int),
            steps=_number(ins.get("steps"), int),
            guidance=_number(ins.get("cfg")),
            sampler=ins.get("sampler_name"),
            scheduler=ins.get("scheduler"),
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
        ins = node.get("inputs", {})
        for key in ("text", "text_g", "positive"):
            if isinstance(ins.get(key), str):
                return ins[key]
        node = _linked(graph, ins.get("conditioning") or ins.get("conditioning_1"))
    return ""
