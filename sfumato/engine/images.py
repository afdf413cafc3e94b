"""Pictures given to image-to-image and inpainting: read, normalised, fitted to the model.

Any picture people have works: any mode (alpha is laid on white, palettes and greyscale become
RGB), any size, a phone's EXIF rotation applied. Without an explicit size, the picture is
scaled to about the model's native area with its aspect ratio kept (``request.fit_size``),
so the result has the input's proportions. A mask is white where the picture is to be
repainted; a mask of another size is scaled to the picture when its proportions match.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from sfumato.errors import InvalidRequest

MAX_INPUT_PIXELS = 64_000_000  # a 8000 x 8000 photo; larger ones are refused, not decoded


@dataclass
class ImageInputs:
    """The pictures of an image-to-image or inpainting request, fitted to the output size."""

    image: Image.Image
    mask: Image.Image | None = None  # "L", white = repaint


def read_picture(source: str | Path | bytes | Image.Image, what: str = "The picture"):
    """A picture as RGB, upright; a sentence for anything that is not one."""
    if isinstance(source, Image.Image):
        image = source
    else:
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
            image.load()
        except Image.DecompressionBombError:  # Pillow's own guard, at open, for huge claims
            raise InvalidRequest(too_large) from None
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            raise InvalidRequest(
                f"{what} is not a picture sfumato can read (PNG, JPEG, WebP, ...): {e}."
            ) from None
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, "white")
        flat.alpha_composite(rgba)
        return flat.convert("RGB")
    return image.convert("RGB")


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
