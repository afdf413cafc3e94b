"""spandrel, imported without torchvision.

spandrel's registry imports every architecture it knows when it is imported, and two of them
(LaMa, an inpainting model, and RestoreFormer, a face restorer: neither an upscaler) import
torchvision at module level. torchvision cannot be in this project's environment (the CPU
torch wheel has no matching torchvision; PyPI's is built against CUDA's torch and fails at
import, DESIGN.md), so spandrel is installed with ``--no-deps``. While spandrel is imported,
an empty stand-in answers for those imports and is removed right after, so nothing else ever
sees a torchvision; a file of those two architectures then fails with a sentence.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types

from sfumato.errors import InvalidRequest

INSTALL = 'pip install --no-deps "spandrel>=0.4,<0.5" einops'
_STAND_IN = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")
_lock = threading.Lock()


class MissingTorchvision(RuntimeError):
    """What the stand-in's names raise: the architecture needs the real torchvision."""


def spandrel():
    """The spandrel module; a sentence saying how to install it when it is missing."""
    if "spandrel" in sys.modules:
        return sys.modules["spandrel"]
    if importlib.util.find_spec("spandrel") is None:
        raise InvalidRequest(
            f"Upscaler models need the spandrel package, not installed here: {INSTALL} "
            "(--no-deps keeps torchvision out, see the docs). Lanczos needs nothing."
        )
    with _lock:
        if importlib.util.find_spec("torchvision") is not None:
            return importlib.import_module("spandrel")
        added = [name for name in _STAND_IN if name not in sys.modules]
        for name in added:
            sys.modules[name] = _stand_in(name)
        try:
            return importlib.import_module("spandrel")
        finally:
            for name in added:
                sys.modules.pop(name, None)


def _stand_in(name: str) -> types.ModuleType:
    module = types.ModuleType(name)

    def missing(*args, **kwargs):
        raise MissingTorchvision("this architecture needs torchvision, which is not installed")

    # the names LaMa and RestoreFormer import (spandrel 0.4)
    module.rotate = module.normalize = missing
    module.InterpolationMode = types.SimpleNamespace(BILINEAR="bilinear", NEAREST="nearest")
    return module
