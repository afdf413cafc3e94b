"""Upscaling a picture: Lanczos always, and the upscaler models users bring (ESRGAN,
RealESRGAN, SwinIR, DAT, ...) loaded through spandrel, which tells the architecture from the
weights, run tile by tile so a 4x of a large picture fits in memory.

- ``library.py``: importing spandrel without torchvision.
- ``models.py``: an upscaler file described (architecture, scale) and loaded, both cached.
- ``tiles.py``: a network run over overlapping tiles, blended back together.
- ``run.py``: a picture enlarged by a factor with a named upscaler.
"""
