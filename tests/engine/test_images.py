"""Pictures given to image-to-image and inpainting: read, normalised, fitted, checked."""

import io

import pytest
from PIL import Image

from sfumato.engine.families import SD15, SDXL
from sfumato.engine.images import prepare, read_picture
from sfumato.engine.request import GenerationRequest, fit_size, resolve
from sfumato.errors import InvalidRequest


def _bytes(image, fmt="PNG", **options):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def test_any_mode_becomes_rgb_and_transparency_becomes_white():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (255, 0, 0, 255))
    picture = read_picture(_bytes(rgba))
    assert picture.mode == "RGB"
    assert picture.getpixel((0, 0)) == (255, 0, 0) and picture.getpixel((1, 1)) == (255, 255, 255)
    assert read_picture(_bytes(Image.new("L", (4, 4), 9))).getpixel((0, 0)) == (9, 9, 9)
    assert read_picture(_bytes(Image.new("P", (4, 4)))).mode == "RGB"


def test_a_phones_exif_rotation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    photo = read_picture(_bytes(Image.new("RGB", (40, 20)), "JPEG", exif=exif))
    assert photo.size == (20, 40)


def test_what_is_not_a_picture_is_a_sentence(tmp_path):
    with pytest.raises(InvalidRequest, match="--init-image is not a picture sfumato can read") as e:
        read_picture(b"GIF89a but not really", "--init-image")
    assert "object at 0x" not in e.value.message  # no Python object's name in a sentence
    whole = _bytes(Image.effect_noise((64, 64), 50).convert("RGB"))
    with pytest.raises(InvalidRequest, match="not a picture"):
        read_picture(whole[: len(whole) // 2])
    with pytest.raises(InvalidRequest, match="cannot be read: No such file"):
        read_picture(tmp_path / "missing.png")


def test_the_output_keeps_the_inputs_proportions_at_the_native_area():
    assert fit_size((1200, 800), (512, 512), None, None) == (624, 416)
    assert fit_size((800, 1200), (1024, 1024), None, None) == (840, 1256)
    assert fit_size((1200, 800), (512, 512), 768, None) == (768, 512)
    assert fit_size((1200, 800), (512, 512), 640, 640) == (640, 640)
    settings, _ = resolve(GenerationRequest("a cat", init_image=Image.new("RGB", (300, 600))), SDXL)
    assert (settings.width, settings.height) == (728, 1448)


def test_masks_are_scaled_to_the_picture_or_refused_with_a_reason():
    picture = Image.new("RGB", (200, 100))
    mask = Image.new("L", (100, 50), 255)
    fitted = prepare(picture, mask, 128, 64)
    assert fitted.image.size == fitted.mask.size == (128, 64)
    with pytest.raises(InvalidRequest, match="mask is 100x100 but the picture is 200x100"):
        prepare(picture, Image.new("L", (100, 100), 255), 128, 64)
    with pytest.raises(InvalidRequest, match="all black"):
        prepare(picture, Image.new("L", (200, 100), 0), 128, 64)


def test_strength_defaults_and_bounds():
    picture = Image.new("RGB", (64, 64))
    img2img, _ = resolve(GenerationRequest("a", init_image=picture), SD15)
    assert (img2img.mode, img2img.strength) == ("img2img", 0.75)
    inpaint, _ = resolve(GenerationRequest("a", init_image=picture, mask_image=picture), SD15)
    assert (inpaint.mode, inpaint.strength) == ("inpaint", 1.0)
    with pytest.raises(InvalidRequest, match="Strength must be more than 0 and at most 1"):
        resolve(GenerationRequest("a", init_image=picture, strength=1.5), SD15)
    with pytest.raises(InvalidRequest, match="A mask goes with a picture"):
        resolve(GenerationRequest("a", mask_image=picture), SD15)
    _, warnings = resolve(GenerationRequest("a", strength=0.5), SD15)
    assert warnings == ["Strength is for image-to-image and inpainting; it was ignored."]


def test_at_most_two_pictures_decode_at_once(monkeypatch):
    import threading
    import time

    from sfumato.engine import images

    now, most, lock = 0, 0, threading.Lock()
    convert = images._to_rgb

    def counted(image):
        nonlocal now, most
        with lock:
            now += 1
            most = max(most, now)
        time.sleep(0.05)
        with lock:
            now -= 1
        return convert(image)

    monkeypatch.setattr(images, "_to_rgb", counted)
    content = _bytes(Image.new("RGBA", (16, 16)))
    threads = [threading.Thread(target=read_picture, args=(content,)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == images.DECODES_AT_ONCE == 2


def test_a_small_file_of_huge_16_bit_pixels_costs_its_pixels_not_a_gigabyte(tmp_path):
    """4000x4000 16-bit RGBA: 64 MB decoded (Pillow keeps 8 bits), 48 MB as RGB. Whole-picture
    RGBA copies took 245 MB; image-info decoded the pixels only to read the text after them."""
    from benchmarks.picture_memory import big_png, measure

    path = tmp_path / "big.png"
    path.write_bytes(big_png(4000))
    assert path.stat().st_size < 200_000
    assert measure(path, "upload") < 160
    assert measure(path, "image-info") < 20
