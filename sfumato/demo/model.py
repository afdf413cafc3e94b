"""The demo model's architecture: SD 1.5's component types, sized for a toy world and a CPU.

One config holds every number (nanoGPT style). The components are the ones any SD 1.5
checkpoint has, a CLIP text encoder on the shipped tokenizer with the standard 77-token
context, a UNet with cross-attention, an AutoencoderKL and a DDPM noise schedule, so the
trained model loads and runs through exactly the engine path of a real SD 1.5 model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel


@dataclass(frozen=True)
class DemoConfig:
    seed: int = 0
    image_size: int = 64  # pictures of the synthetic world are 64 x 64

    # AutoencoderKL: three blocks, so 4x downsampling (64 px -> 16 x 16 x 4 latents). The
    # world is flat colours and sharp edges; 8x would leave a small shape 1-2 latent pixels.
    # 16 channels at full resolution trains 2.5x faster than 32 and flat colours need few.
    vae_channels: tuple[int, ...] = (16, 32, 64)
    vae_steps: int = 3000  # L1 0.026 at 3000 against 0.023 at 4000: diffusion needs the time more
    vae_batch: int = 16
    vae_lr: float = 2e-3
    vae_kl_weight: float = 1e-6  # as SD's VAE: barely regularised, reconstruction first
    # a small shape is ~5% of the pixels: weighting them up makes the autoencoder learn
    # shapes and their colours early instead of backgrounds first
    vae_foreground_weight: float = 5.0

    # CLIP text encoder: the token table must span CLIP's 49,408 tokens (the shipped tokenizer),
    # which at width 80 is 4.0 M of the model's parameters; only the world's ~50 words train.
    text_width: int = 80
    text_layers: int = 3
    text_heads: int = 1  # one 80-wide head: on a CPU, narrow heads cost more than they give

    # UNet on 16 x 16 latents: cross-attention at 8 x 8 and 4 x 4 (and the middle block),
    # where each position sees most of the picture; 16 x 16 stays convolutional for speed
    # (attention there costs 30 % of the samples). Two 64-wide heads train 1.4x faster on this
    # CPU than eight 16-wide ones (the attention backward dominated a step).
    unet_channels: tuple[int, ...] = (64, 128, 128)
    unet_attention_levels: tuple[int, ...] = (1, 2)
    unet_heads: int = 2

    # Diffusion training
    prediction_type: str = "v_prediction"  # steadier than epsilon for a small model
    steps: int = 2500
    batch: int = 64
    lr: float = 8e-4
    warmup: int = 150
    ema_decay: float = 0.999
    min_snr_gamma: float = 5.0  # Min-SNR loss weighting: faster convergence at equal cost
    caption_dropout: float = 0.1  # empty captions teach the unconditional model (CFG)
    partial_captions: float = 0.2  # captions naming part of a scene (negative prompts)
    latent_pool: int = 16_000  # pictures encoded once, re-captioned at every use

    # Recommended inference settings, written into the model card. Chosen on prompts and seeds
    # outside the eval set: 10-25 steps and guidance 4-8 score alike within noise; 12 steps of
    # DPM++ 2M at guidance 6 is the fastest setting at the top (about 0.25 s a picture here).
    defaults: dict = field(
        default_factory=lambda: {
            "width": 64,
            "height": 64,
            "steps": 12,
            "guidance": 6.0,
            "sampler": "dpmpp_2m",
            "negative_prompt": "",
        }
    )

    def to_dict(self) -> dict:
        return asdict(self)


def text_encoder(c: DemoConfig) -> CLIPTextModel:
    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49408,
            max_position_embeddings=77,
            hidden_size=c.text_width,
            intermediate_size=4 * c.text_width,
            num_hidden_layers=c.text_layers,
            num_attention_heads=c.text_heads,
            hidden_act="quick_gelu",
            bos_token_id=49406,
            eos_token_id=49407,
            pad_token_id=49407,
        )
    )


def unet(c: DemoConfig) -> UNet2DConditionModel:
    n = len(c.unet_channels)
    attention = set(c.unet_attention_levels)
    return UNet2DConditionModel(
        sample_size=c.image_size // 4,
        in_channels=4,
        out_channels=4,
        block_out_channels=c.unet_channels,
        layers_per_block=1,
        down_block_types=[
            "CrossAttnDownBlock2D" if i in attention else "DownBlock2D" for i in range(n)
        ],
        up_block_types=[
            "CrossAttnUpBlock2D" if n - 1 - i in attention else "UpBlock2D" for i in range(n)
        ],
        cross_attention_dim=c.text_width,
        attention_head_dim=c.unet_heads,  # diffusers' name; SD 1.5 configs use it as heads
        norm_num_groups=32,
    )


def vae(c: DemoConfig) -> AutoencoderKL:
    n = len(c.vae_channels)
    model = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=c.vae_channels,
        layers_per_block=1,
        down_block_types=["DownEncoderBlock2D"] * n,
        up_block_types=["UpDecoderBlock2D"] * n,
        norm_num_groups=16,
        sample_size=c.image_size,
        mid_block_add_attention=False,  # 256-token attention for no gain on flat shapes
    )
    # Start with a near-zero posterior variance (log-variance -10): sampled latents are then
    # the means from the first step, so training is not drowned in noise, and image-to-image,
    # which samples the posterior, gets clean latents.
    with torch.no_grad():
        model.quant_conv.bias[4:].fill_(-10.0)
    return model


def noise_schedule(c: DemoConfig) -> DDPMScheduler:
    """SD 1.5's schedule (scaled-linear betas, 1000 steps) with the demo's prediction type."""
    return DDPMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type=c.prediction_type,
        clip_sample=False,
        steps_offset=1,
    )
