"""What a LoRA file is for, from its safetensors header alone.

Two layouts are common: kohya/A1111 (``lora_unet_...``, ``lora_te_...``; SDXL ones have
``lora_te1_``/``lora_te2_``; LyCORIS files too) and diffusers/PEFT
(``unet.down_blocks....lora_A.weight``). Either way the width of the text context the
cross-attention reads tells the family: 768 for SD 1.5, 2048 for SDXL, 1024 for SD 2.x; a LoRA
of the text encoder alone tells it by the encoder's width (768 CLIP-L, 1024 OpenCLIP-H) or by
having two. kohya's trainer also writes what it was trained on into the header
(``ss_base_model_version``, ``ss_output_name``, ``ss_tag_frequency``). Kinds of file the engine
cannot apply (LyCORIS LoHa, LoKr, ...) are refused when a request names them, before it queues.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from sfumato.engine.loras import lora_kind, not_applied
from sfumato.errors import UnsupportedModel

CONTEXT_WIDTH = {768: "sd15", 2048: "sdxl", 1024: "sd2"}
TEXT_WIDTH = {768: "sd15", 1024: "sd2"}  # one text encoder: CLIP-L or OpenCLIP-H
ARCHITECTURE_LABEL = {"sd15": "SD 1.5", "sdxl": "SDXL", "sd2": "SD 2.x"}


@dataclass
class LoraInfo:
    architecture: str | None  # "sd15", "sdxl", "sd2", or None when it cannot be told
    layout: str  # "kohya" or "diffusers"
    metadata: dict[str, str] = field(default_factory=dict)
    unsupported: str | None = None  # a kind of file the engine cannot apply: "a LyCORIS LoHa file"

    @property
    def tag_frequency(self) -> dict[str, int]:
        """Training tags over all of kohya's datasets, most frequent first."""
        try:
            datasets = json.loads(self.metadata.get("ss_tag_frequency", "{}"))
        except ValueError:
            return {}
        counts: Counter[str] = Counter()
        for tags in datasets.values() if isinstance(datasets, dict) else ():
            for tag, n in tags.items() if isinstance(tags, dict) else ():
                if isinstance(n, int):
                    counts[tag.strip()] += n
        return dict(counts.most_common())

    @property
    def output_name(self) -> str | None:
        return self.metadata.get("ss_output_name")


def is_lora(keys) -> bool:
    return any(
        k.startswith(("lora_unet_", "lora_te")) or ".lora_A." in k or ".lora_down." in k
        for k in keys
    )


def _architecture_from_metadata(metadata: dict[str, str]) -> str | None:
    base = metadata.get("ss_base_model_version", "").lower()
    if base.startswith("sdxl"):
        return "sdxl"
    if base.startswith("sd_v1"):
        return "sd15"
    if base.startswith("sd_v2"):
        return "sd2"
    return None


def _down(key: str) -> bool:
    # the matrix that reads a layer's input: LoRA/LoCon down, PEFT A, LoHa's w1_b
    return any(part in key for part in ("lora_down", "lora_A", "lora.down", "hada_w1_b"))


def describe_lora(shapes: dict[str, tuple], metadata: dict[str, str], name: str) -> LoraInfo:
    if not is_lora(shapes):
        raise UnsupportedModel(f"{name} is not a LoRA (no LoRA weights in it).")
    layout = "kohya" if any(k.startswith("lora_") for k in shapes) else "diffusers"
    architecture = None
    if any(k.startswith(("lora_te1_", "lora_te2_", "text_encoder_2.")) for k in shapes):
        architecture = "sdxl"
    else:
        # the down (A) matrix of a cross-attention key projection is rank x context width
        for key, shape in shapes.items():
            if "attn2" in key and "to_k" in key and len(shape) == 2 and _down(key):
                architecture = CONTEXT_WIDTH.get(shape[1])
                break
        else:  # no cross-attention: the text encoder's width, read by its first attention
            for key, shape in shapes.items():
                text = key.startswith(("lora_te_", "text_encoder.")) and "q_proj" in key
                if text and _down(key) and len(shape) == 2:
                    architecture = TEXT_WIDTH.get(shape[1])
                    break
    return LoraInfo(
        architecture or _architecture_from_metadata(metadata),
        layout,
        metadata,
        unsupported=lora_kind(shapes),
    )


def check_lora_fits(lora_name: str, lora: LoraInfo, model_name: str, model_architecture: str):
    """Refuse, with a sentence, a LoRA made for another family than the model's, or of a kind
    the engine cannot apply."""
    if lora.unsupported:
        raise UnsupportedModel(not_applied(lora_name, lora.unsupported))
    if lora.architecture is None or lora.architecture == model_architecture:
        return
    raise UnsupportedModel(
        f"The LoRA {lora_name} was made for {ARCHITECTURE_LABEL[lora.architecture]} models; "
        f"{model_name} is {ARCHITECTURE_LABEL.get(model_architecture, model_architecture)}. "
        "Choose a LoRA of the model's family."
    )
