"""A small LoRA for the demo model with an effect anyone can measure: white backgrounds.

It is trained on the demo world's pictures captioned as usual ("a red circle on a blue
background"), but with every background painted white, so with the LoRA the model draws white
backgrounds whatever the prompt says, and without it the prompt's colour. Low rank on the UNet's
attention projections, as LoRAs people share are; saved in the diffusers/PEFT layout with
kohya's metadata keys, deterministically from the seed, in a few minutes on a CPU.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load_file, save_file

from sfumato.catalog.cards import describe_model
from sfumato.demo import model as arch
from sfumato.demo.train import render_batch
from sfumato.demo.world import caption, sample_scene
from sfumato.engine.loader import load_model

NAME = "demo-white-background"


def train_lora(
    model_dir: Path, out: Path, steps: int = 300, batch: int = 32, rank: int = 4, seed: int = 0
) -> Path:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    pipe = load_model(describe_model(model_dir), device="cpu", dtype="fp32").pipe
    unet, vae, text_encoder, tokenizer = pipe.unet, pipe.vae, pipe.text_encoder, pipe.tokenizer
    for module in (unet, vae, text_encoder):
        module.requires_grad_(False)
    unet.add_adapter(
        LoraConfig(
            r=rank,
            lora_alpha=rank,
            init_lora_weights="gaussian",
            target_modules=["to_q", "to_k", "to_v", "to_out.0"],
        )
    )
    params = [p for p in unet.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=1e-3)
    schedule = arch.noise_schedule(arch.DemoConfig())
    size = vae.config.sample_size
    for _ in range(steps):
        scenes = []
        while len(scenes) < batch:
            scene = sample_scene(rng)
            if scene.colour != "white":  # a white shape on white would show nothing
                scenes.append(scene)
        texts = [caption(scene, rng) for scene in scenes]  # naming the scene's own background
        pictures = render_batch([replace(s, background="white") for s in scenes], size, rng)
        with torch.no_grad():
            x0 = vae.encode(pictures).latent_dist.mode() * vae.config.scaling_factor
            ids = tokenizer(
                texts, padding="max_length", max_length=77, truncation=True, return_tensors="pt"
            ).input_ids
            context = text_encoder(ids).last_hidden_state
        noise = torch.randn_like(x0)
        t = torch.randint(0, schedule.config.num_train_timesteps, (batch,))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            prediction = unet(schedule.add_noise(x0, noise, t), t, context).sample
        loss = F.mse_loss(prediction.float(), schedule.get_velocity(x0, noise, t))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    out.parent.mkdir(parents=True, exist_ok=True)
    type(pipe).save_lora_weights(
        out.parent, unet_lora_layers=get_peft_model_state_dict(unet), weight_name=out.name
    )
    # kohya's keys, so catalogs (ours, A1111's) know what it is for and what it is called
    tensors = load_file(out)
    metadata = {"ss_base_model_version": "sd_v1", "ss_output_name": NAME}
    save_file({k: v.to(torch.float16).contiguous() for k, v in tensors.items()}, out, metadata)
    return out
