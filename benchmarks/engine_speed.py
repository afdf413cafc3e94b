"""Seconds per picture and peak memory of full-size SD 1.5 and SDXL-Lightning, for plain
diffusers and for sfumato's engine with and without its speed-ups, measured in one run.

    python benchmarks/engine_speed.py --quick   # SD 1.5 at 128 px, 4 steps, 3 paths: 2-4 min
    python benchmarks/engine_speed.py           # SD 1.5 at 512 px, 8 steps, and
                                                # SDXL-Lightning at 1024 px, 4 steps
    python benchmarks/engine_speed.py --peers   # adds OpenVINO's own fixed-shape pipeline
    python benchmarks/engine_speed.py --case sd15 --path "OpenVINO (default)"
                                                # a slow machine: one case, the baseline and
                                                # the paths whose names contain these words

The weights are random, made from the real architectures' configs: the compute and memory are
those of the real models, the pictures are noise. Each path runs in a process of its own (its
peak memory is its own), the paths take turns round after round, and the figures are medians
with their ratio to plain diffusers in fp32. The load (from disk; for OpenVINO's peer its
compile, not its one-time conversion). Per stage, in the first picture: text encoding, the
VAE decode; and one UNet call (one step; with guidance it carries the prompt and the negative
prompt), the median over the next picture, once compiled. Whole picture: the
first in a new process (what a one-off command waits; sfumato compiles its networks for the
picture's shapes on the way) and the next one of the same size (what a server's later
requests wait).
Memory: the peak resident set, and the peak private memory (the part that is not pages of
mapped weight files). It writes a JSON file and a chart (PNG) of the whole-picture times.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import torch

HERE = Path(__file__).resolve().parent
PROMPT = "a lighthouse on a cliff at dusk, oil painting"
NEGATIVE = "blurry, low quality"
BASELINE = "diffusers fp32"


@dataclass(frozen=True)
class Case:
    name: str
    architecture: str  # sd15 or sdxl: the shipped configs the random model is built from
    family: str
    size: int
    steps: int
    guidance: float
    sampler: str  # sfumato's sampler id; plain diffusers gets the same scheduler
    sfumato: tuple[str, ...]  # the sfumato paths measured (SFUMATO)


# sfumato paths: the engine as users run it (on the CPU by default on OpenVINO), on PyTorch, and
# with its opt-in shortcuts (engine/backends/openvino.py, engine/shortcuts.py):
# name -> (load options, request fields)
OPENVINO = {"backend": "openvino"}
INT8 = {"backend": "openvino", "dtype": "int8"}  # needs NNCF: pip install nncf
PYTORCH = {"backend": "torch"}
# what is converted once per model, before the rounds: name -> load options
CONVERSIONS = {"OpenVINO conversion": OPENVINO, "int8 quantization": INT8}
SFUMATO = {
    "sfumato PyTorch": (PYTORCH, {}),
    "sfumato PyTorch + guidance cutoff 0.5": (PYTORCH, {"guidance_cutoff": 0.5}),
    "sfumato PyTorch + DeepCache 2": (PYTORCH, {"deep_cache": 2}),
    "sfumato PyTorch + both": (PYTORCH, {"guidance_cutoff": 0.5, "deep_cache": 2}),
    "sfumato OpenVINO (default)": (OPENVINO, {}),
    # the default until 2026-12: one UNet network with its shapes open, for every request
    "sfumato OpenVINO, UNet shapes open": ({**OPENVINO, "unet_shapes": 0}, {}),
    "sfumato OpenVINO + guidance cutoff 0.5": (OPENVINO, {"guidance_cutoff": 0.5}),
    "sfumato OpenVINO + DeepCache 2": (OPENVINO, {"deep_cache": 2}),
    "sfumato OpenVINO + both": (OPENVINO, {"guidance_cutoff": 0.5, "deep_cache": 2}),
    "sfumato OpenVINO int8": (INT8, {}),
    "sfumato OpenVINO int8 + both": (INT8, {"guidance_cutoff": 0.5, "deep_cache": 2}),
}
QUICK = [
    Case(
        "SD 1.5, 128 px, 4 steps",
        "sd15",
        "sd15",
        128,
        4,
        7.5,
        "dpmpp_2m",
        ("sfumato OpenVINO (default)", "sfumato OpenVINO + both"),
    ),
]
FULL = [
    Case("SD 1.5, 512 px, 8 steps", "sd15", "sd15", 512, 8, 7.5, "dpmpp_2m", tuple(SFUMATO)),
    # Lightning runs without guidance: nothing to cut; a picture takes minutes on 2 cores
    Case(
        "SDXL-Lightning, 1024 px, 4 steps",
        "sdxl",
        "sdxl-lightning",
        1024,
        4,
        1.0,
        "euler",
        (
            "sfumato PyTorch",
            "sfumato PyTorch + DeepCache 2",
            "sfumato OpenVINO (default)",
            "sfumato OpenVINO, UNet shapes open",
            "sfumato OpenVINO + DeepCache 2",
        ),
    ),
]


def paths_for(case: Case, peers: bool) -> list[str]:
    from sfumato.engine.device import cpu_has_native_bf16

    paths = [BASELINE]
    # without native bf16, PyTorch emulates it and it is slower than fp32 (measured): a
    # full run would spend minutes on a path nobody should take
    if cpu_has_native_bf16():
        paths.append("diffusers bf16")
    if peers and case.architecture == "sd15":
        paths.append("OpenVINO (peer)")
    return paths + list(case.sfumato)


def select(cases: list[Case], architecture: str | None, words: list[str]) -> list[Case]:
    """The cases of ``architecture`` (all without one), with only the sfumato paths whose
    names contain one of ``words`` (all without any); cases left with none are dropped."""
    chosen = []
    for case in cases:
        paths = tuple(p for p in case.sfumato if not words or any(w in p for w in words))
        if (architecture in (None, case.architecture)) and paths:
            chosen.append(replace(case, sfumato=paths))
    return chosen


# --- one measurement, in its own process ------------------------------------------------------


def build_random_model(case: Case, folder: Path) -> None:
    """A diffusers folder of the architecture with random weights (seeded)."""
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from sfumato.engine.families import CONFIG_ROOT
    from sfumato.engine.tokenizers import PAD_OPEN_CLIP, clip_tokenizer

    torch.manual_seed(0)
    config = CONFIG_ROOT / case.architecture
    parts = {
        "unet": UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(config / "unet")),
        "vae": AutoencoderKL.from_config(AutoencoderKL.load_config(config / "vae")),
        "text_encoder": CLIPTextModel(CLIPTextConfig.from_pretrained(config / "text_encoder")),
        "tokenizer": clip_tokenizer(),
        "scheduler": EulerDiscreteScheduler.from_pretrained(config / "scheduler"),
    }
    if case.architecture == "sdxl":
        parts["text_encoder_2"] = CLIPTextModelWithProjection(
            CLIPTextConfig.from_pretrained(config / "text_encoder_2")
        )
        parts["tokenizer_2"] = clip_tokenizer(pad_token=PAD_OPEN_CLIP)
        pipe = StableDiffusionXLPipeline(**parts)
    else:
        pipe = StableDiffusionPipeline(
            **parts, safety_checker=None, feature_extractor=None, requires_safety_checker=False
        )
    pipe.to(torch.float16).save_pretrained(folder)  # as published checkpoints are


class PrivatePeak:
    """The highest private memory (RssAnon: the process's own, not pages of files it maps)
    seen every 20 ms, on Linux. Peak RSS also counts the pages of weight files read through
    mmap, which the system takes back when it needs memory."""

    def __init__(self):
        self.gb = 0.0
        if Path("/proc/self/status").is_file():
            threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while True:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("RssAnon:"):
                    self.gb = max(self.gb, int(line.split()[1]) / 2**20)
            time.sleep(0.02)


class StageTimer:
    """Wall time of every call of a pipeline's text encoders, UNet and VAE decoder."""

    def __init__(self, pipe):
        self.times: dict[str, list[float]] = {"text": [], "unet": [], "vae": []}
        parts = {"unet": pipe.unet, "vae": pipe.vae.decoder, "text": pipe.text_encoder}
        if getattr(pipe, "text_encoder_2", None) is not None:
            parts["text_2"] = pipe.text_encoder_2
        for stage, module in parts.items():
            self._time(module, self.times["text" if stage == "text_2" else stage])

    @staticmethod
    def _time(module, into: list[float]) -> None:
        started = []
        module.register_forward_pre_hook(lambda *_: started.append(time.perf_counter()))
        module.register_forward_hook(lambda *_: into.append(time.perf_counter() - started.pop()))


def _openvino_peer(pipe, case: Case) -> SimpleNamespace:
    """Plain diffusers' UNet and VAE decoder converted to OpenVINO at this one shape (as
    optimum-intel exports them), compiled in bf16 where the CPU has it (OpenVINO's own
    default), else fp32."""
    import openvino as ov

    from sfumato.engine.backends.openvino_networks import Float32Decoder, Float32Unet

    core = ov.Core()
    latent = case.size // 8
    batch = 2 if case.guidance > 1 else 1
    example = (
        torch.randn(batch, 4, latent, latent),
        torch.tensor(1.0),
        torch.randn(batch, 77, pipe.text_encoder.config.hidden_size),
    )
    started = time.perf_counter()
    with torch.no_grad():
        unet = ov.convert_model(
            Float32Unet(pipe.unet, sdxl=False),
            example_input=example,
            input=[ov.PartialShape(list(x.shape)) for x in example],
        )
        decoder = ov.convert_model(
            Float32Decoder(pipe.vae.decoder),
            example_input=torch.randn(1, 4, latent, latent),
            input=[ov.PartialShape([1, 4, latent, latent])],
        )
    # a user of the peer exports once and compiles at every load: the conversion is left
    # out of its load time, as sfumato's is
    converted_s = time.perf_counter() - started
    unet, decoder = (core.compile_model(network, "CPU") for network in (unet, decoder))
    return SimpleNamespace(unet=unet, decoder=decoder, converted_s=converted_s)


def convert(case: Case, folder: Path, options: dict) -> dict:
    """The one-time conversion for the OpenVINO backend (with ``options``): its time and
    memory."""
    from sfumato.catalog.cards import describe_model
    from sfumato.engine.loader import load_model

    source = describe_model(folder, family_hint=case.family)
    model = load_model(source, device="cpu", cache_dir=folder.parent / "cache", **options)
    return {
        "seconds": model.backend.compiled.converted_s,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30,
    }


def settings(case: Case, source, seed: int, **fields):
    """The case's request to sfumato's engine, resolved for ``source``'s family."""
    from sfumato.engine.request import GenerationRequest, resolve

    request = GenerationRequest(
        PROMPT,
        negative_prompt=NEGATIVE,
        width=case.size,
        height=case.size,
        steps=case.steps,
        guidance=case.guidance,
        sampler=case.sampler,
        seed=seed,
        **fields,
    )
    return resolve(request, source.family)[0]


def measure(case: Case, path: str, folder: Path) -> dict:
    from diffusers import DiffusionPipeline

    from sfumato.catalog.cards import describe_model
    from sfumato.engine.backends.openvino_networks import running
    from sfumato.engine.families import get_family
    from sfumato.engine.generate import generate
    from sfumato.engine.loader import load_model
    from sfumato.engine.samplers import get_sampler

    peer = None  # the OpenVINO peer's compiled parts
    private = PrivatePeak()
    started = time.perf_counter()
    if path.startswith("sfumato"):
        source = describe_model(folder, family_hint=case.family)
        model = load_model(
            source, device="cpu", cache_dir=folder.parent / "cache", **SFUMATO[path][0]
        )
        pipe = model.pipe
    else:
        dtype = torch.bfloat16 if path == "diffusers bf16" else torch.float32
        pipe = DiffusionPipeline.from_pretrained(folder, dtype=dtype, local_files_only=True)
        pipe.set_progress_bar_config(disable=True)
        pipe.scheduler = get_sampler(case.sampler).make_scheduler(
            dict(pipe.scheduler.config), get_family(case.family).scheduler_overrides
        )
        if path == "OpenVINO (peer)":
            peer = _openvino_peer(pipe, case)
    load_s = time.perf_counter() - started - (peer.converted_s if peer else 0)

    def picture(seed: int) -> float:
        started = time.perf_counter()
        if path.startswith("sfumato"):
            generate(model, settings(case, source, seed, **SFUMATO[path][1]))
        else:
            with torch.inference_mode(), running(peer, pipe):
                pipe(
                    PROMPT,
                    negative_prompt=NEGATIVE if case.guidance > 1 else None,
                    width=case.size,
                    height=case.size,
                    num_inference_steps=case.steps,
                    guidance_scale=case.guidance,
                    generator=torch.Generator().manual_seed(seed),
                )
        return time.perf_counter() - started

    timer = StageTimer(pipe)
    picture_s = picture(0)  # the first in a new process: what a one-off command waits
    stages = {stage: list(times) for stage, times in timer.times.items()}
    # the next one, same size: what a server's later requests wait (kernels made already)
    next_picture_s = picture(1)
    unet = stages["unet"]
    return {
        "load_s": load_s,
        "text_s": sum(stages["text"]),
        # once compiled: the next picture's (a short first picture's median can fall on a
        # call that compiles, sfumato compiling the UNet for each shape at its first call)
        "unet_call_s": statistics.median(timer.times["unet"][len(unet) :]),
        "unet_total_s": sum(unet),
        "vae_s": sum(stages["vae"]),
        "picture_s": picture_s,
        "next_picture_s": next_picture_s,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30,
        "peak_private_gb": private.gb,
        "dtype": str(pipe.text_encoder.dtype).removeprefix("torch."),
    }


# --- the run ----------------------------------------------------------------------------------


class ChildFailed(Exception):
    pass


def _child(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise ChildFailed(f"{' '.join(args[:3])} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def run(cases: list[Case], rounds: int, peers: bool, work: Path) -> tuple[dict, dict]:
    results: dict = {}
    conversions: dict = {}
    for case in cases:
        folder = work / case.architecture
        if not (folder / "model_index.json").is_file():
            print(f"building a random-weight {case.architecture} model in {folder}", flush=True)
            _child("--build", json.dumps(asdict(case)), str(folder))
        # once per model, before the rounds: every OpenVINO path then loads from the cache
        shutil.rmtree(folder.parent / "cache", ignore_errors=True)
        for name, options in CONVERSIONS.items():
            if not any(SFUMATO[p][0] == options for p in case.sfumato):
                continue
            try:
                made = (json.dumps(asdict(case)), str(folder), json.dumps(options))
                out = _child("--convert", *made)
                conversions.setdefault(case.name, {})[name] = json.loads(out.splitlines()[-1])
            except ChildFailed as e:  # e.g. out of memory: the other paths still run
                print(f"  {name} failed, its paths left out: {e}", flush=True)
                case = replace(
                    case, sfumato=tuple(p for p in case.sfumato if SFUMATO[p][0] != options)
                )
        runs: dict[str, list[dict]] = {path: [] for path in paths_for(case, peers)}
        for round_ in range(rounds):
            for path in list(runs):
                try:
                    out = _child("--measure", json.dumps(asdict(case)), path, str(folder))
                except ChildFailed as e:
                    if path == BASELINE:
                        raise
                    print(f"  {path} left out: {e}", flush=True)  # a peer that will not run
                    del runs[path]
                    continue
                runs[path].append(json.loads(out.strip().splitlines()[-1]))
                print(
                    f"  {case.name} · round {round_ + 1} · {path}: "
                    f"{runs[path][-1]['picture_s']:.1f} s",
                    flush=True,
                )
        results[case.name] = {
            path: {
                key: (statistics.median(r[key] for r in rs) if key != "dtype" else rs[0][key])
                for key in rs[0]
            }
            for path, rs in runs.items()
        }
    return results, conversions


def report(results: dict, conversions: dict) -> str:
    lines = []
    for case, paths in results.items():
        base = paths[BASELINE]
        lines += [
            f"\n{case}",
            f"{'path':40} {'load':>6} {'text':>6} {'UNet call':>10} {'VAE':>7} {'picture':>9} "
            f"{'speed-up':>9} {'next':>7} {'speed-up':>9} {'peak RAM':>9} {'private':>8}  dtype",
        ]
        for path, r in paths.items():
            lines.append(
                f"{path:40} {r['load_s']:5.1f}s {r['text_s']:5.2f}s "
                f"{r['unet_call_s']:9.2f}s {r['vae_s']:6.2f}s "
                f"{r['picture_s']:8.1f}s {base['picture_s'] / r['picture_s']:8.2f}x "
                f"{r['next_picture_s']:6.1f}s {base['next_picture_s'] / r['next_picture_s']:8.2f}x "
                f"{r['peak_rss_gb']:6.1f} GiB {r['peak_private_gb']:4.1f} GiB  {r['dtype']}"
            )
        for name, c in conversions.get(case, {}).items():
            lines.append(
                f"({name}, once per model: {c['seconds']:.0f} s, peak {c['peak_rss_gb']:.1f} GiB)"
            )
    return "\n".join(lines)


def chart(results: dict, path: Path) -> None:
    """Horizontal bars of seconds per picture, one group per case (Pillow, no plot library):
    the first picture in a new process, and under it in a darker shade the next one."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=15)
    rows = sum(len(paths) + 2 for paths in results.values())
    width, label, row = 1020, 340, 26
    image = Image.new("RGB", (width, rows * row + 20), "white")
    draw = ImageDraw.Draw(image)
    y = 10
    for case, paths in results.items():
        draw.text(
            (10, y),
            f"{case}: seconds per picture, first / next (lower is better)",
            fill="black",
            font=font,
        )
        y += row
        longest = max(r["picture_s"] for r in paths.values())
        for name, r in paths.items():
            scale = (width - label - 130) / longest
            first, next_ = (scale * r[key] for key in ("picture_s", "next_picture_s"))
            light, dark = (
                ("#cccccc", "#888888") if not name.startswith("sfumato") else ("#a9c1f0", "#3b6fd8")
            )
            draw.text((10, y + 4), name, fill="black", font=font)
            # two half-height bars, so a next picture slower than the first hides nothing
            middle = y + row // 2 - 1
            draw.rectangle((label, y + 3, label + first, middle), fill=light)
            draw.rectangle((label, middle + 1, label + next_, y + row - 5), fill=dark)
            figures = f"{r['picture_s']:.1f} / {r['next_picture_s']:.1f} s"
            draw.text((label + max(first, next_) + 8, y + 4), figures, fill="black", font=font)
            y += row
        y += row
    image.save(path)


def vector_units() -> str:
    """The CPU's widest vector and matrix instructions: what decides its speed here (bf16 in
    hardware or not, int8 dot products or not)."""
    have = torch.cpu.get_capabilities()
    units = [
        u for u in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16") if have.get(u)
    ]
    return " ".join(units).upper().replace("_", "-") or "none of AVX2, AVX-512, AMX"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="SD 1.5 at 128 px, one round.")
    parser.add_argument("--rounds", type=int, default=None, help="Default: 1 quick, 2 full.")
    parser.add_argument("--peers", action="store_true", help="Add OpenVINO (if installed).")
    parser.add_argument("--work-dir", type=Path, help="Keep the random models here for reruns.")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="JSON and chart.")
    parser.add_argument(
        "--case", choices=sorted({c.architecture for c in FULL}), help="Only this model."
    )
    parser.add_argument(
        "--path",
        action="append",
        default=[],
        help="Only the sfumato paths whose names contain this (repeatable); "
        "plain diffusers fp32 always runs, as the baseline.",
    )
    args = parser.parse_args()
    if args.peers and importlib.util.find_spec("openvino") is None:
        parser.error("--peers needs OpenVINO: pip install openvino (not a dependency)")
    cases = select(QUICK if args.quick else FULL, args.case, args.path)
    if not cases:
        parser.error(f"no sfumato path's name contains {' or '.join(map(repr, args.path))}")
    rounds = args.rounds or (1 if args.quick else 2)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work_dir or Path(temporary)
        results, conversions = run(cases, rounds, args.peers, work)
    minutes = (time.perf_counter() - started) / 60
    from sfumato.engine.device import cpu_has_native_bf16, cpu_name

    header = (
        f"{cpu_name()} · {os.cpu_count()} cores · {vector_units()} · native bf16: "
        f"{'yes' if cpu_has_native_bf16() else 'no'} · torch "
        f"{torch.__version__} · {torch.get_num_threads()} threads · {rounds} round(s), "
        f"medians · {minutes:.1f} min\nRandom weights: compute and memory are the real "
        "models', the pictures are noise."
    )
    print(header + report(results, conversions))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "engine_speed_quick" if args.quick else "engine_speed"
    (args.out / f"{stem}.json").write_text(
        json.dumps(
            {"machine": header, "results": results, "openvino_conversion": conversions}, indent=2
        )
        + "\n"
    )
    chart(results, args.out / f"{stem}.png")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--build":
        build_random_model(Case(**json.loads(sys.argv[2])), Path(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--convert":
        case, options = Case(**json.loads(sys.argv[2])), json.loads(sys.argv[4])
        print(json.dumps(convert(case, Path(sys.argv[3]), options)))
    elif len(sys.argv) > 1 and sys.argv[1] == "--measure":
        result = measure(Case(**json.loads(sys.argv[2])), sys.argv[3], Path(sys.argv[4]))
        print(json.dumps(result))
    else:
        main()
