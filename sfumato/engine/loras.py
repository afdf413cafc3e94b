"""LoRAs applied for one generation and taken off after it.

diffusers loads both common layouts, kohya/A1111 (``lora_unet_...``, ``lora_te_...``; SDXL
``lora_te1_``/``lora_te2_``, LyCORIS LoCon too) and diffusers/PEFT, into the UNet and the text
encoders, and applies several at once with their own weights, negative ones included. The text
encoders' LoRA layers sit inside the encoder modules, so the prompt encoding of
``conditioning`` (which calls the encoders itself) goes through them. The LoRAs are loaded as
adapters for the request and unloaded after it, even when it fails or is cancelled, so a LoRA
never leaks into the next request: the same request without it gives the same prompt
embeddings and pixels as before it.

Two gaps in diffusers are filled here, for kohya-layout files only:

- diffusers converts kohya text-encoder attention keys to its old ``to_q_lora.down`` names and
  MLP keys to ``lora_linear_layer`` names, then guesses the format of the text-encoder part from
  whether an ``out_proj`` or an MLP key is present. A text-encoder LoRA on q/k/v only (PEFT's
  default for CLIP, converted to kohya) has neither, and loading failed with "Could not
  automatically infer state dict type". We let diffusers convert the file, then give the text
  encoders' keys the PEFT names diffusers itself writes (``q_proj.lora_A.weight``).
- kohya's ``alpha`` (scale alpha / rank) is folded into ``lora_up`` before the conversion: a
  converted state dict handed back to diffusers carries no alphas, and diffusers' per-layer
  alpha names for a text encoder keep the ``text_model.`` prefix that transformers 5's
  CLIPTextModel no longer has, so layers with their own alpha would silently get the default.

Files of kinds diffusers cannot apply (LyCORIS LoHa, LoKr, (IA)^3, OFT, ...) and LoRAs made for
networks of another size (another family's text encoder or UNet) are refused with a sentence
before anything is loaded.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers.utils import convert_unet_state_dict_to_peft
from safetensors import SafetensorError
from safetensors.torch import load_file

from sfumato.errors import UnsupportedModel


@dataclass(frozen=True)
class LoraSpec:
    path: Path
    name: str  # as the user named it (the metadata's name)
    weight: float
    hash: str | None = None  # A1111's short hash, for ``Lora hashes``


KOHYA_PREFIXES = ("lora_unet_", "lora_te_", "lora_te1_", "lora_te2_")
# what follows the layer name in a kohya-layout key -> the kind of file that holds it
_KOHYA_PARTS = {
    **dict.fromkeys(("lora_down.weight", "lora_up.weight", "alpha")),  # LoRA, LoCon: applied
    **dict.fromkeys(
        ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2"),
        "a LyCORIS LoHa",
    ),
    **dict.fromkeys(
        ("lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t2"),
        "a LyCORIS LoKr",
    ),
    **dict.fromkeys(("on_input", "weight"), "a LyCORIS (IA)^3"),
    **dict.fromkeys(("oft_diag", "oft_blocks", "rescale"), "a LyCORIS OFT"),
    "oft_R": "a LyCORIS BOFT",
    **dict.fromkeys(("a1.weight", "a2.weight", "b1.weight", "b2.weight"), "a LyCORIS GLoRA"),
    **dict.fromkeys(("diff", "diff_b"), "a LyCORIS full (weight difference)"),
    **dict.fromkeys(("w_norm", "b_norm"), "a LyCORIS norm"),
    "lora_mid.weight": "a LyCORIS LoCon with CP decomposition (lora_mid)",
    "dora_scale": "a DoRA (weight-decomposed LoRA)",
}


def not_applied(name: str, kind: str) -> str:
    """The sentence that refuses a file of a ``kind`` diffusers cannot apply."""
    return (
        f"The LoRA {name} is {kind}, which sfumato cannot apply yet; it applies LoRA files "
        "(kohya/A1111 and diffusers/PEFT layouts) and LyCORIS LoCon files."
    )


def lora_kind(keys) -> str | None:
    """None for a file diffusers can apply, else the kind of file it is ("a LyCORIS LoHa file")."""
    unknown = None
    for key in keys:
        if not key.startswith(KOHYA_PREFIXES):
            continue
        part = key.split(".", 1)[1] if "." in key else ""
        if part not in _KOHYA_PARTS:
            unknown = unknown or key
        elif _KOHYA_PARTS[part]:
            return f"{_KOHYA_PARTS[part]} file"
    if unknown:
        return f"a file of a kind sfumato does not know (its tensors are named like {unknown})"
    return None


def _bake_alphas(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """kohya's ``up @ down * alpha / rank`` with the scale folded into ``up``, alphas dropped
    (an alpha of 0 means no scaling, as in sd-scripts)."""
    out = {}
    for key, tensor in tensors.items():
        if key.endswith(".alpha"):
            continue
        if key.endswith(".lora_up.weight"):
            layer = key.removesuffix(".lora_up.weight")
            alpha = tensors.get(f"{layer}.alpha")
            down = tensors.get(f"{layer}.lora_down.weight")
            if alpha is not None and down is not None and float(alpha) != 0:
                tensor = tensor.float() * (float(alpha) / down.shape[0])
        out[key] = tensor
    return out


# diffusers' names for converted kohya text-encoder keys -> PEFT's (what diffusers saves)
_TEXT_ENCODER_NAMES = {
    **{f".to_{p}_lora.down.": f".{p}_proj.lora_A." for p in ("q", "k", "v", "out")},
    **{f".to_{p}_lora.up.": f".{p}_proj.lora_B." for p in ("q", "k", "v", "out")},
    ".lora_linear_layer.down.": ".lora_A.",
    ".lora_linear_layer.up.": ".lora_B.",
}


def _peft_names(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    unet = {k: v for k, v in state_dict.items() if k.startswith("unet.")}
    out = convert_unet_state_dict_to_peft(unet)  # diffusers' own renaming for the UNet
    for key, value in state_dict.items():
        if key.startswith("unet."):
            continue
        for old, new in _TEXT_ENCODER_NAMES.items():
            key = key.replace(old, new)
        out[key] = value
    return out


def _from_kohya(pipe, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # diffusers converts the layout (SDXL's SGM block names included) ...
    state_dict, _ = pipe.lora_state_dict(_bake_alphas(tensors), unet_config=pipe.unet.config)
    # ... and we give every key the PEFT name diffusers writes itself (see the module docstring)
    return _peft_names(state_dict)


def _check_sizes(pipe, name: str, state_dict: dict[str, torch.Tensor]) -> None:
    """Refuse, with a sentence, a LoRA whose layers are of another size than the model's, or
    whose text-encoder layers it lacks (made for another family: a text encoder 1024 wide and
    24 layers deep on SD 1.5's 768 and 12). Left to itself, transformers answers the first with
    a load report and "ignore_mismatched_sizes", and drops the second without a word."""
    for key, tensor in state_dict.items():
        if not key.endswith((".lora_A.weight", ".lora_B.weight")):
            continue
        component, _, path = key.partition(".")
        network = getattr(pipe, component, None)
        if not isinstance(network, torch.nn.Module):
            continue
        path = path.rsplit(".lora_", 1)[0]
        if not hasattr(network, "text_model"):  # transformers 5's flat CLIPTextModel
            path = path.removeprefix("text_model.")
        try:
            weight = network.get_submodule(path).weight
        except AttributeError:
            if component.startswith("text_encoder"):  # transformers would drop it unsaid
                raise UnsupportedModel(
                    f"The LoRA {name} has text-encoder layers this model lacks ({path}): it was "
                    "made for a larger text encoder, another family of models. Choose a LoRA "
                    "made for this model's family."
                ) from None
            continue  # a UNet layer it lacks: left to diffusers (its names vary more)
        side = 1 if key.endswith(".lora_A.weight") else 0  # A: rank x in; B: out x rank
        got, expected = tensor.shape[side], weight.shape[side]
        if got == expected:
            continue
        which = {"text_encoder_2": "second text encoder", "unet": "UNet"}.get(
            component, "text encoder"
        )
        raise UnsupportedModel(
            f"The LoRA {name} was made for a model whose {which} is of another size "
            f"({path} is {got} wide in the LoRA, {expected} in this model): it belongs to "
            "another family of models. Choose a LoRA made for this model's family."
        )


def _load(pipe, lora: LoraSpec, adapter: str) -> None:
    try:
        tensors = load_file(str(lora.path))
    except (SafetensorError, OSError, ValueError) as e:
        raise UnsupportedModel(
            f"The LoRA {lora.name} cannot be read as a safetensors file: {str(e)[:200]}"
        ) from None
    kind = lora_kind(tensors)
    if kind is not None:
        raise UnsupportedModel(not_applied(lora.name, kind))
    kohya = any(k.startswith(KOHYA_PREFIXES) for k in tensors)
    try:
        state_dict = _from_kohya(pipe, tensors) if kohya else tensors
        _check_sizes(pipe, lora.name, state_dict)
        # a diffusers/PEFT file goes in by its path: diffusers reads the adapter settings
        # some of them keep in the header
        pipe.load_lora_weights(state_dict if kohya else str(lora.path), adapter_name=adapter)
    except (ValueError, KeyError, RuntimeError, OSError, IndexError) as e:
        raise UnsupportedModel(
            f"The LoRA {lora.name} cannot be applied to this model: "
            f"{str(e).strip().splitlines()[0][:300]}"
        ) from None


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
                _load(pipe, lora, adapter)
            finally:  # a load that failed half-way leaves layers behind: unload those too
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
