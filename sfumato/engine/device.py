"""Pick the device and dtype to run on: CUDA in fp16, Apple MPS, else the CPU (bf16 where it
multiplies bf16 natively, fp32 elsewhere)."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from sfumato.errors import InvalidRequest

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
# the UNet quantized, on OpenVINO (engine/int8.py); PyTorch's parts run in auto's dtype
INT8 = "int8"


def pick_device(requested: str | None = None) -> torch.device:
    if requested and requested != "auto":
        try:
            device = torch.device(requested)
        except RuntimeError:
            raise InvalidRequest(
                f"Unknown device '{requested}'. Use cpu, cuda, cuda:N or mps."
            ) from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise InvalidRequest("CUDA was asked for, but no CUDA GPU is available to PyTorch.")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise InvalidRequest(
                "MPS was asked for, but this machine has no Apple GPU for PyTorch."
            )
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(device: torch.device, requested: str | None = None) -> torch.dtype:
    if requested and requested not in ("auto", INT8):
        if requested not in DTYPES:
            names = ", ".join([*DTYPES, INT8])
            raise InvalidRequest(f"Unknown dtype '{requested}'. Use one of: {names}.")
        return DTYPES[requested]
    # half precision halves memory and is the fast path on GPUs; CPUs have no fast fp16
    if device.type != "cpu":
        return torch.float16
    return torch.bfloat16 if cpu_has_native_bf16() else torch.float32


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX).

    There a full-size SD 1.5 UNet step takes about half the time of fp32; without them
    PyTorch emulates bf16 and it is slower than fp32, so fp32 stays the choice (figures and
    machines in ``benchmarks/RESULTS.md``, from ``benchmarks/engine_speed.py``).
    """
    capabilities = torch.cpu.get_capabilities()
    return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))


def cpu_has_int8_units() -> bool:
    """Whether this CPU multiplies int8 natively (VNNI, on AVX-512 or AVX, or AMX): where
    ``--dtype int8`` makes a UNet call about two thirds of bf16's (``benchmarks/RESULTS.md``;
    AVX2 alone 0.89x)."""
    capabilities = torch.cpu.get_capabilities()
    return any(capabilities.get(unit) for unit in ("avx512_vnni", "avx_vnni", "amx_int8"))


def cpu_name() -> str:
    """The CPU's model name, as Linux reports it (else what the platform says)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()
