"""A models folder as users have them: A1111 layout, loose files, versions, LoRAs, cards."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

RANK = 4


def kohya_lora(path: Path, architecture: str, tags: dict[str, int] | None = None, **meta) -> Path:
    """A LoRA in the kohya/A1111 layout, with the metadata kohya's trainer writes."""
    if architecture == "sd15":
        tensors = {
            "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down."
            "weight": torch.zeros(RANK, 768),
            "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": torch.zeros(
                RANK, 768
            ),
        }
        base = "sd_v1"
    else:
        tensors = {
            "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight": (
                torch.zeros(RANK, 2048)
            ),
            "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": torch.zeros(
                RANK, 768
            ),
            "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": torch.zeros(
                RANK, 1280
            ),
        }
        base = "sdxl_base_v1-0"
    metadata = {"ss_base_model_version": base, "ss_network_module": "networks.lora"}
    if tags:
        metadata["ss_tag_frequency"] = json.dumps({"10_dataset": tags})
    metadata |= meta
    save_file(tensors, path, metadata=metadata)
    return path


def peft_lora(path: Path, context_width: int) -> Path:
    """A LoRA in the diffusers/PEFT layout, with no metadata at all."""
    key = "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight"
    save_file({key: torch.zeros(RANK, context_width)}, path)
    return path


def copy_model(source: Path, target: Path) -> Path:
    """A copy of a single-file model that hashes differently (as two versions would)."""
    save_file(load_file(source), target, metadata={"copy": target.name})
    return target


@pytest.fixture
def models_root(tiny_models, tmp_path) -> Path:
    root = tmp_path / "models"
    sd_dir = root / "Stable-diffusion"
    sd_dir.mkdir(parents=True)
    sd15, sdxl = tiny_models["sd15"]["single"], tiny_models["sdxl"]["single"]
    copy_model(sd15, sd_dir / "dreamshaper_7.safetensors")
    copy_model(sd15, sd_dir / "dreamshaper_8.safetensors")
    copy_model(sdxl, root / "juggernautXL_v9.safetensors")
    copy_model(sdxl, root / "juggernautXL_v10.safetensors")
    shutil.copytree(tiny_models["sd15"]["folder"], root / "anime-4")
    shutil.copytree(tiny_models["sd15"]["folder"], root / "anime-5")
    (root / "Lora").mkdir()
    kohya_lora(root / "Lora" / "pixel_v2.safetensors", "sd15", {"pixel art": 40, "1girl": 12})
    kohya_lora(root / "Lora" / "xl_detail.safetensors", "sdxl")
    peft_lora(root / "Lora" / "peft-style.safetensors", 768)
    return root
