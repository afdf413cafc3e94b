"""Train the demo model from scratch on the synthetic world, deterministically from a seed.

Phases run one after another (anything running beside them on a 2-core CPU halves their
speed): the autoencoder on pictures, then a pool of pictures encoded once, then the UNet and
text encoder together on the diffusion loss, with captions drawn afresh at every use. The
result is a diffusers-format SD 1.5 folder in fp16, with its model card and training log.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, StableDiffusionPipeline
from diffusers.training_utils import EMAModel

from sfumato.demo import model as arch
from sfumato.demo.analyze import evaluate
from sfumato.demo.card import write_demo_card
from sfumato.demo.world import COLOURS, caption, partial_caption, render, sample_scene, vocabulary
from sfumato.engine.preview import LatentPreview, fit_latent_preview
from sfumato.engine.tokenizers import clip_tokenizer

# (phase, step, total, loss) after each optimiser step
Progress = Callable[[str, int, int, float], None]


def render_batch(scenes, size: int, rng: np.random.Generator) -> torch.Tensor:
    """Scenes rendered (with jitter) as a float batch in [-1, 1], channels first."""
    arrays = np.stack([np.asarray(render(s, size, rng)) for s in scenes])
    return torch.from_numpy(arrays).permute(0, 3, 1, 2).float() / 127.5 - 1


def _cosine(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


class Log:
    """Loss log: one JSON object per line, so a long run can be followed and plotted."""

    def __init__(self, path: Path):
        self.file = open(path, "w", encoding="utf-8")  # noqa: SIM115 (open for the whole run)
        self.start = time.time()

    def write(self, **row) -> None:
        row["elapsed_s"] = round(time.time() - self.start, 1)
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()


def train_vae(c: arch.DemoConfig, rng: np.random.Generator, log: Log, progress: Progress, device):
    vae = arch.vae(c).to(device)
    optimiser = torch.optim.AdamW(vae.parameters(), lr=c.vae_lr, weight_decay=0.0)
    for step in range(c.vae_steps):
        for group in optimiser.param_groups:
            group["lr"] = c.vae_lr * _cosine(step, c.vae_steps, 100)
        scenes = [sample_scene(rng) for _ in range(c.vae_batch)]
        x = render_batch(scenes, c.image_size, rng).to(device)
        background = torch.tensor([COLOURS[s.background] for s in scenes], device=device)
        background = background / 127.5 - 1
        foreground = (x - background[:, :, None, None]).abs().sum(1, keepdim=True) > 0.3
        weight = 1 + (c.vae_foreground_weight - 1) * foreground.float()
        with torch.autocast(device.type, dtype=torch.bfloat16):
            posterior = vae.encode(x).latent_dist
            reconstruction = vae.decode(posterior.sample()).sample
        # L1 keeps edges sharper than L2 would; the KL term only keeps latents bounded
        l1 = (reconstruction.float() - x).abs().mean()
        loss = ((reconstruction.float() - x).abs() * weight).mean() / weight.mean()
        loss = loss + c.vae_kl_weight * posterior.kl().mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if step % 50 == 0 or step == c.vae_steps - 1:
            log.write(phase="vae", step=step, l1=round(l1.item(), 5))
        progress("autoencoder", step + 1, c.vae_steps, l1.item())
    return vae.eval()


@torch.no_grad()
def check_vae(vae, c: arch.DemoConfig, device, n: int = 200) -> dict[str, float]:
    """How often the analyzer still reads a picture right after encoding and decoding it."""
    rng = np.random.default_rng(c.seed + 1)
    scenes = [sample_scene(rng) for _ in range(n)]
    x = render_batch(scenes, c.image_size, rng).to(device)
    decoded = torch.cat([vae.decode(vae.encode(b).latent_dist.mode()).sample for b in x.split(50)])
    images = ((decoded.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    return evaluate(images, scenes)


@torch.no_grad()
def encode_pool(vae, c: arch.DemoConfig, rng: np.random.Generator, device):
    scenes = [sample_scene(rng) for _ in range(c.latent_pool)]
    latents = torch.cat(
        [
            vae.encode(
                render_batch(scenes[i : i + 256], c.image_size, rng).to(device)
            ).latent_dist.mode()
            for i in range(0, len(scenes), 256)
        ]
    )
    return latents, scenes


@torch.no_grad()
def fit_preview(folder: Path, c: arch.DemoConfig, n: int = 256) -> LatentPreview:
    """Live-preview factors for the saved model's own autoencoder (SD's do not fit it), from
    pictures drawn apart from training. Reads the saved files, so it gives the same numbers
    whenever it runs on them."""
    vae = AutoencoderKL.from_pretrained(folder / "vae", torch_dtype=torch.float32)
    rng = np.random.default_rng(c.seed + 2)
    x = render_batch([sample_scene(rng) for _ in range(n)], c.image_size, rng)
    latents = vae.encode(x).latent_dist.mode() * vae.config.scaling_factor
    return fit_latent_preview(latents, x)


def _caption_for(scene, c: arch.DemoConfig, rng: np.random.Generator) -> str:
    r = rng.random()
    if r < c.caption_dropout:
        return ""
    if r < c.caption_dropout + c.partial_captions:
        return partial_caption(scene, rng)
    return caption(scene, rng)


def train_diffusion(latents, scenes, c: arch.DemoConfig, rng, log: Log, progress: Progress):
    device = latents.device
    unet, text_encoder = arch.unet(c).to(device), arch.text_encoder(c).to(device)
    schedule = arch.noise_schedule(c)
    tokenizer = clip_tokenizer()
    params = list(unet.parameters()) + list(text_encoder.parameters())
    optimiser = torch.optim.AdamW(params, lr=c.lr, weight_decay=0.01)
    ema = EMAModel(params, decay=c.ema_decay, use_ema_warmup=True)
    alphas = schedule.alphas_cumprod.to(device)
    snr = alphas / (1 - alphas)
    # Min-SNR-gamma for v-prediction: min(snr, gamma) / (snr + 1)
    weights = torch.clamp(snr, max=c.min_snr_gamma) / (snr + 1)
    captions_seen: list[str] = []
    for step in range(c.steps):
        for group in optimiser.param_groups:
            group["lr"] = c.lr * _cosine(step, c.steps, c.warmup)
        index = rng.integers(0, len(scenes), c.batch)
        texts = [_caption_for(scenes[i], c, rng) for i in index]
        captions_seen.extend(t for t in texts if t)
        ids = tokenizer(
            texts, padding="max_length", max_length=77, truncation=True, return_tensors="pt"
        ).input_ids.to(device)
        x0 = latents[torch.from_numpy(index).to(device)]
        noise = torch.randn_like(x0)
        t = torch.randint(0, schedule.config.num_train_timesteps, (c.batch,)).to(device)
        noisy = schedule.add_noise(x0, noise, t)
        target = schedule.get_velocity(x0, noise, t)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            context = text_encoder(ids).last_hidden_state
            prediction = unet(noisy, t, context).sample
        per_item = F.mse_loss(prediction.float(), target, reduction="none").mean(dim=(1, 2, 3))
        loss = (per_item * weights[t]).mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()
        ema.step(params)
        if step % 50 == 0 or step == c.steps - 1:
            log.write(
                phase="diffusion",
                step=step,
                loss=round(loss.item(), 5),
                lr=round(optimiser.param_groups[0]["lr"], 7),
            )
        progress("diffusion", step + 1, c.steps, loss.item())
    ema.copy_to(params)  # the averaged weights are the ones shipped
    return unet.eval(), text_encoder.eval(), captions_seen


def train(
    out: Path,
    c: arch.DemoConfig | None = None,
    progress: Progress | None = None,
    device: str = "cpu",
) -> Path:
    """Train the demo model into the folder ``out`` (created if needed; its files replaced).

    Deterministic from the seed on the CPU (the shipped weights). ``device`` moves the same
    recipe to another device (not yet measured on one), with other rounding.
    """
    device = torch.device(device)
    c = c or arch.DemoConfig()
    progress = progress or (lambda *args: None)
    torch.manual_seed(c.seed)
    torch.set_num_threads(os.cpu_count() or 1)
    rng = np.random.default_rng(c.seed)
    out.mkdir(parents=True, exist_ok=True)
    log = Log(out / "training-log.jsonl")
    started = time.time()

    vae = train_vae(c, rng, log, progress, device)
    vae_check = check_vae(vae, c, device)
    log.write(phase="vae-check", **{k: round(v, 4) for k, v in vae_check.items()})
    progress("encoding pictures", 0, 1, 0.0)
    latents, scenes = encode_pool(vae, c, rng, device)
    progress("encoding pictures", 1, 1, 0.0)
    # SD scales latents to unit variance; the factor goes into the VAE config, as in SD
    scale = float(1 / latents.std())
    vae.register_to_config(scaling_factor=scale)
    log.write(phase="latents", count=len(scenes), std=round(1 / scale, 5))
    unet, text_encoder, captions = train_diffusion(latents * scale, scenes, c, rng, log, progress)

    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=clip_tokenizer(),
        unet=unet,
        scheduler=DPMSolverMultistepScheduler.from_config(arch.noise_schedule(c).config),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    ).to("cpu", torch.float16)
    pipe.save_pretrained(out, safe_serialization=True)
    shutil.rmtree(out / "tokenizer")  # the shipped tokenizer is used; no second copy
    for weights in out.rglob("*.safetensors"):
        weights.chmod(0o644)  # written private by default; this is a model to share
    minutes = (time.time() - started) / 60
    write_demo_card(
        out,
        config=c,
        preview=fit_preview(out, c),
        vocabulary=vocabulary(captions),
        training={
            "minutes": round(minutes, 1),
            "vae_reconstruction": vae_check,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
    )
    log.write(phase="done", minutes=round(minutes, 1))
    log.file.close()
    return out


def smoke_config() -> arch.DemoConfig:
    """A few steps of every phase: proves the script runs end to end in seconds."""
    return replace(
        arch.DemoConfig(), vae_steps=3, steps=3, latent_pool=64, batch=8, vae_batch=4, warmup=1
    )
