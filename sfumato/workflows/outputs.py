"""The files a graph's output nodes make, named as ComfyUI clients expect to see them.

``SaveImage`` pictures land in the user's history; their ComfyUI file name carries the
history picture's id (``portrait_00001_3f2a..._.png``), so ``/view`` finds the picture from the
name a client got back, and only its owner's. ``PreviewImage`` pictures are kept apart, for a
while (``TEMP_KEY``), as ComfyUI keeps them in its temp folder.
"""

from __future__ import annotations

import io
import json
import re

from PIL import Image
from PIL.PngImagePlugin import PngInfo

TEMP_KEY = "temp/{user_id}/{filename}"
_ID = re.compile(r"_([0-9a-f]{32})_\.png$")
_UNSAFE = re.compile(r"[^\w.\- ]+")


def split_prefix(prefix: str) -> tuple[str, str]:
    """``SaveImage``'s ``filename_prefix`` as (subfolder, file prefix): ``"faces/portrait"``
    -> ``("faces", "portrait")``; anything that could leave the folder is dropped."""
    parts = [_UNSAFE.sub("_", p).strip(". ") for p in prefix.replace("\\", "/").split("/")]
    parts = [p[:64] for p in parts if p]
    if not parts:
        return "", "ComfyUI"
    return "/".join(parts[:-1]), parts[-1]


def output_name(prefix: str, counter: int, image_id: str) -> str:
    return f"{prefix}_{counter:05}_{image_id}_.png"


def image_id_of(filename: str) -> str | None:
    """The history picture a ``SaveImage`` file name stands for."""
    match = _ID.search(filename)
    return match.group(1) if match else None


def comfy_png(picture: Image.Image, graph: dict, extra_pnginfo: dict | None) -> bytes:
    """A PNG with the graph embedded as ComfyUI embeds it: a ``prompt`` text chunk (the API
    graph), then one chunk per ``extra_pnginfo`` key (the UI's ``workflow``), JSON each."""
    info = PngInfo()
    info.add_text("prompt", json.dumps(graph))
    for key, value in (extra_pnginfo or {}).items():
        if isinstance(key, str) and key not in ("prompt", "parameters"):
            info.add_text(key[:79], json.dumps(value))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", pnginfo=info, compress_level=4)
    return buffer.getvalue()
