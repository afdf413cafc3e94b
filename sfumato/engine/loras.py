"""LoRAs applied for one generation and taken off after it.

diffusers reads both common layouts (kohya/A1111 ``lora_unet_...`` and diffusers/PEFT) and
applies several at once with their own weights, negative ones included. The LoRAs are loaded
as adapters for the request and unloaded after it, even when it fails or is cancelled, so a
LoRA never leaks into the next request: the same request without it gives the same pixels as
before it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from sfumato.errors import UnsupportedModel


@dataclass(frozen=True)
class LoraSpec:
    path: Path
    name: str  # as the user named it (the metadata's name)
    weight: float
    hash: str | None = None  # A1111's short hash, for ``Lora hashes``


@contextlib.contextmanager
def applied(pipe, loras: list[LoraSpec]):
    """The pipeline with ``loras`` active, for the duration of the block."""
    if not loras:
        yield
        return
    adapters: list[str] = []
    try:
        for index, lora in enumerate(loras):
            adapter = f"sfumato_{index}"
            try:
                pipe.load_lora_weights(str(lora.path), adapter_name=adapter)
            except (ValueError, KeyError, RuntimeError, OSError, IndexError) as e:
                raise UnsupportedModel(
                    f"The LoRA {lora.name} cannot be applied to this model: "
                    f"{str(e).splitlines()[0][:300]}"
                ) from None
            adapters.append(adapter)
        try:
            pipe.set_adapters(adapters, adapter_weights=[lora.weight for lora in loras])
        except ValueError as e:  # e.g. none of a LoRA's layers exist in this model
            raise UnsupportedModel(
                f"The LoRAs {', '.join(x.name for x in loras)} do not fit this model: "
                f"{str(e).splitlines()[0][:300]}"
            ) from None
        yield
    finally:
        if adapters:
            pipe.unload_lora_weights()
