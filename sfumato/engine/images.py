"""Pictures given to image-to-image and inpainting: read, normalised, fitted to the model.

Any picture people have works: any mode (alpha is laid on white, palettes and greyscale become
RGB), any size, a phone's EXIF rotation applied. Without an explicit size, the picture is
scaled to about the model's native area with its aspect ratio kept (``request.fit_size``),
so the result has the input's proportions. A mask is white where the picture is to be
repainted; a mask of another size is scaled to the picture when its proportions match.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from sfumato.errors import InvalidRequest

MAX_INPUT_PIXELS = 64_000_000  # a 8000 x 8000 photo; larger ones are refused, not decoded


@dataclass
class ImageInputs:
    """The pictures of an image-to-image or inpainting request, fitted to the output size."""

    image: Image.Image
    mask: Image.Image | None = None  # "L", white = repaint


def read_picture(source: str | Path | bytes | Image.Image, what: str = "The picture"):
    """A picture as 8-bit RGB, upright; a sentence for anything that is not one.

    Its size is checked before its pixels are decoded, at most ``DECODES_AT_ONCE`` pictures
    decode at a time, and the decoded pixels become RGB a strip at a time: a 0.5 MB PNG of
    8000x8000 16-bit RGBA pixels peaks at its decoded 256 MB plus the 192 MB of RGB, where
    whole-picture conversions took a gigabyte."""
    if isinstance(source, Image.Image):
        return _upright(_to_rgb(source), _orientation(source))
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as e:
        raise InvalidRequest(f"{what} cannot be read: {e.strerror} ({source}).") from None
    too_large = (
        f"{what} is too large: at most {MAX_INPUT_PIXELS // 1_000_000} megapixels are accepted."
    )
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_INPUT_PIXELS:
            raise InvalidRequest(f"{too_large[:-1]} ({image.width}x{image.height}).")
        orientation = _orientation(image)
        with _DECODING:
            image.load()
            rgb = _to_rgb(image)
            if rgb is not image:
                image.close()  # its decoded pixels go now, not when the caller is done
            del image
            return _upright(rgb, orientation)
    except Image.DecompressionBombError:  # Pillow's own guard, at open, for huge claims
        raise InvalidRequest(too_large) from None
    except UnidentifiedImageError:  # Pillow's words would name its buffer object
        raise InvalidRequest(
            f"{what} is not a picture sfumato can read (PNG, JPEG, WebP, ...): its bytes are "
            "none of those formats."
        ) from None
    except (OSError, SyntaxError, ValueError) as e:
        # (ValueError: Pillow's refusal of a text chunk that inflates past MAX_TEXT_CHUNK)
        raise InvalidRequest(
            f"{what} is not a picture sfumato can read (PNG, JPEG, WebP, ...): {e}."
        ) from None


DECODES_AT_ONCE = 2  # pictures decoded at the same time, each up to 64 MP (~450 MB at peak)
_DECODING = threading.BoundedSemaphore(DECODES_AT_ONCE)
_STRIP_PIXELS = 1_000_000  # converted a strip of rows at a time: a few MB of working memory
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _orientation(image: Image.Image) -> int | None:
    """The EXIF orientation (a phone held sideways), read from the header."""
    if image.format == "PNG" and "exif" not in image.info:
        return None  # a PNG's EXIF after its pixels would be read only by decoding them
    try:
        return image.getexif().get(0x0112)
    except Exception:  # noqa: BLE001 (a malformed EXIF block is as good as none)
        return None


def _upright(image: Image.Image, orientation: int | None) -> Image.Image:
    method = _TRANSPOSE.get(orientation)
    return image.transpose(method) if method is not None else image


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB, alpha laid on white (palettes and greyscale become RGB), converted a strip of rows
    at a time so that no whole-picture RGBA copies are made."""
    if image.mode == "RGB":
        return image
    alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    out = Image.new("RGB", image.size, "white")
    rows = max(1, _STRIP_PIXELS // max(1, image.width))
    for top in range(0, image.height, rows):
        box = (0, top, image.width, min(top + rows, image.height))
        strip = image.crop(box)
        if alpha:
            flat = Image.new("RGBA", strip.size, "white")
            flat.alpha_composite(strip.convert("RGBA"))
            strip = flat
        out.paste(strip.convert("RGB"), box[:2])
    return out


def prepare(image: Image.Image, mask: Image.Image | None, width: int, height: int) -> ImageInputs:
    """The picture (and mask) at the output size."""
    fitted = image.resize((width, height), Image.Resampling.LANCZOS)
    if mask is None:
        return ImageInputs(fitted)
    mask_ratio, image_ratio = mask.width / mask.height, image.width / image.height
    if abs(mask_ratio / image_ratio - 1) > 0.02:
        raise InvalidRequest(
            f"The mask is {mask.width}x{mask.height} but the picture is "
            f"{image.width}x{image.height}: their proportions differ, so the mask cannot be "
            "laid on the picture. Make the mask from the picture itself."
        )
    grey = mask.convert("L").resize((width, height), Image.Resampling.BILINEAR)
    if grey.getextrema()[1] == 0:
        raise InvalidRequest("The mask is all black: nothing to repaint (white = repaint).")
    return ImageInputs(fitted, grey)


def keep_outside_mask(original: Image.Image, generated: Image.Image, mask: Image.Image):
    """The generated picture inside the mask, the original's own pixels outside it."""
    return Image.composite(generated, original, mask)
