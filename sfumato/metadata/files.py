"""Save images with their generation data embedded, in PNG, JPEG or WebP.

PNG: a ``parameters`` text chunk (A1111's) and a ``sfumato`` chunk with our JSON.
JPEG/WebP: the same ``parameters`` text in EXIF UserComment (as A1111 writes it: "UNICODE\\0"
then UTF-16 big-endian), and our JSON in the EXIF MakerNote, the tag for a maker's own data.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from sfumato.errors import InvalidRequest, OutputExists

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
EXIF_IFD = 0x8769
USER_COMMENT = 0x9286
MAKER_NOTE = 0x927C
JSON_KEY = "sfumato"


def image_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InvalidRequest(f"Cannot write {path.name}: use a .png, .jpg or .webp file name.")
    return fmt


def save_image(
    image: Image.Image, path: Path, parameters: str, data: dict, overwrite: bool = False
) -> Path:
    """Write ``image`` with its metadata; refuse to replace a file unless ``overwrite``."""
    return write_file(path, encode_image(image, image_format(path), parameters, data), overwrite)


def encode_image(image: Image.Image, fmt: str, parameters: str, data: dict) -> bytes:
    """The picture as a PNG, JPEG or WEBP file, its generation data embedded."""
    data_json = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    options: dict = {}
    if fmt == "PNG":
        info = PngInfo()
        info.add_text("parameters", parameters)  # becomes iTXt when not Latin-1
        info.add_text(JSON_KEY, data_json)
        options["pnginfo"] = info
    else:
        exif = Image.Exif()
        ifd = exif.get_ifd(EXIF_IFD)
        ifd[USER_COMMENT] = b"UNICODE\0" + parameters.encode("utf-16-be")
        ifd[MAKER_NOTE] = data_json.encode("utf-8")
        options["exif"] = exif
        options["quality"] = 95
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def write_file(path: Path, content: bytes, overwrite: bool = False) -> Path:
    """Write beside the target, then put it in place in one step: a crash never leaves a
    half-written file under the real name, and an existing file is never replaced unless
    asked (os.link fails if the name is taken)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".partial-", delete=False) as f:
        tmp = Path(f.name)
        try:
            f.write(content)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    try:
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    except FileExistsError:
        raise OutputExists(
            f"{path} already exists. Choose another name, or pass --overwrite to replace it."
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_sfumato_data(path: Path) -> dict | None:
    """Our own JSON from an image we wrote, or None; read as the metadata reader reads (never
    the pixels, text and JSON bounded)."""
    from sfumato.metadata.read import _json, png_texts

    with open(path, "rb") as file, Image.open(file) as image:
        if image.format == "PNG":
            raw = png_texts(file).get(JSON_KEY)
        else:
            raw = image.getexif().get_ifd(EXIF_IFD).get(MAKER_NOTE)
            raw = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return _json(raw)
