"""Opt-in ways to do less work per picture, each with a measured speed and quality cost
(``benchmarks/unet_shortcuts.py``, ``benchmarks/engine_speed.py``,
``tests/engine/test_shortcuts.py``).

- Guidance cutoff: classifier-free guidance runs the UNet twice per step (with the prompt and
  with the negative prompt). Late steps only refine detail, and guidance matters little there,
  so after the first ``cutoff`` share of the steps the negative pass is dropped: those steps
  cost half. (A1111's "negative guidance minimum sigma" and diffusers' "dynamic CFG" are the
  same idea.)
- DeepCache (Ma et al., 2023): the deep, low-resolution blocks of the UNet change slowly from
  one step to the next. Every ``interval``-th step runs the whole UNet and keeps what its deep
  blocks hand to the last, full-resolution up block; the steps between run only the first down
  block and the last up block on those kept features. The first quarter of the steps and the
  last one always run whole.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch


def guidance_cutoff(cutoff: float):
    """A step-end hook that turns guidance off once the share ``cutoff`` of the steps have run
    (of those that run: image-to-image runs fewer), or None for 1.

    The pipeline keeps the negative and positive halves of its batched tensors side by side
    (negative first); from then on only the positive half is kept.
    """
    if cutoff >= 1:
        return None

    def cut(pipeline, step: int, tensors: dict) -> dict:
        guided = max(1, round(pipeline.num_timesteps * cutoff))
        if step + 1 != guided or not pipeline.do_classifier_free_guidance:
            return tensors
        # diffusers reads "> 1" as "guidance on". Its guidance_scale is a read-only property
        # over this private attribute, which its own docs and SDCFGCutoffCallback set too (that
        # callback keeps one picture's tensors only): tests/engine/test_diffusers_private.py
        pipeline._guidance_scale = 1.0
        batch = tensors["latents"].shape[0]
        for name, value in tensors.items():
            if name != "latents" and torch.is_tensor(value) and value.shape[0] == 2 * batch:
                tensors[name] = value.chunk(2)[1]
        return tensors

    return cut


@dataclass
class DeepCache:
    """Where a DeepCache picture is: which call of the UNet comes next, whether it skips the
    deep blocks, and what they gave the last up block on the last whole call."""

    interval: int = 1
    calls: int = 0
    skipping: bool = False
    features: torch.Tensor | None = None

    def next_call(self, steps: int, batch: int) -> None:
        """Decide whether the UNet call about to run (of ``steps``, on ``batch`` latents) runs
        whole: the first quarter of the steps, the last one and one in ``interval`` between."""
        first = math.ceil(steps / 4)
        call = self.calls
        whole = call < first or call >= steps - 1 or (call - (first - 1)) % self.interval == 0
        # a batch that changed (guidance cutoff) cannot use what was kept
        cached = self.features
        self.skipping = not whole and cached is not None and cached.shape[0] == batch
        self.calls += 1


@contextlib.contextmanager
def deep_cache(pipe, interval: int):
    """Within the block, ``pipe``'s UNet runs whole for the first quarter of the steps and the
    last step, and one step in ``interval`` between (1: every step). Yields the state the
    OpenVINO backend reads to run its own cached steps (None for 1).

    The early steps set the composition and the last one the final detail: caching them too
    made 11 of the demo model's 28 test pictures miss their prompt at interval 2, against 5
    with them whole (the full path: 0; tests/engine/test_shortcuts.py).
    """
    if interval <= 1:
        yield None
        return
    state = DeepCache(interval)

    def before_call(module, args, kwargs):
        sample = args[0] if args else kwargs["sample"]
        # num_timesteps is set before the first step (fewer in image-to-image)
        state.next_call(pipe.num_timesteps, sample.shape[0])

    hook = pipe.unet.register_forward_pre_hook(before_call, with_kwargs=True)
    try:
        with stand_ins(pipe.unet, state):
            yield state
    finally:
        hook.remove()


@contextlib.contextmanager
def stand_ins(unet, state: DeepCache):
    """Within the block, ``unet``'s deep blocks run as ``state`` says: on a skipping call they
    hand on ``state.features`` instead of computing; on a whole call the last deep up block's
    output is kept there. (The OpenVINO backend converts the UNet under these too.)"""
    deep_down = list(unet.down_blocks[1:])
    deep_up = list(unet.up_blocks[:-1])

    def stand_in(block, skipped, keep: bool = False):
        """``block``'s forward, or on a cached step ``skipped(hidden states)`` instead."""
        original = block.forward

        def forward(*args, **kwargs):
            if state.skipping:
                return skipped(args[0] if args else kwargs["hidden_states"])
            out = original(*args, **kwargs)
            if keep:
                state.features = out
            return out

        return forward

    def down(block):
        outputs = len(block.resnets) + (1 if block.downsamplers else 0)
        # stand-ins: the skipped up blocks that would read them are skipped too
        return stand_in(block, lambda hidden: (hidden, (hidden,) * outputs))

    patched = [(b, down(b)) for b in deep_down]
    patched += [(b, stand_in(b, lambda _: state.features, keep=b is deep_up[-1])) for b in deep_up]
    if unet.mid_block is not None:
        patched.append((unet.mid_block, stand_in(unet.mid_block, lambda hidden: hidden)))
    for block, forward in patched:
        block.forward = forward
    try:
        yield
    finally:
        for block, _ in patched:
            del block.forward  # the class's own forward again
