"""``sfumato serve --int8-in-background``: the default model's UNet quantized to int8 while the
server runs, and its jobs switched to it once it proves faster and close to the default.

On CPUs that multiply int8 natively (VNNI, AMX) the quantized UNet takes about two thirds of
a bf16 call (``benchmarks/RESULTS.md``), but quantizing takes minutes and gigabytes, and its
pictures differ a little from the default's. So it is opt-in, and it runs after the warm-up
(``warm_up.py``), in a process of its own at a lower priority (``engine/int8_trial.py``),
while the server takes jobs on the default backend. The trial then draws a few pictures both
ways; the server switches when a UNet call takes at most ``MAX_CALL_RATIO`` of the default's
and the pictures are within ``MIN_PSNR_DB`` of them. Either way the model's card records
the figures (an ``[int8]`` table), so that a restart on the same CPU switches at once, from
the conversion cache, without trying again. Pictures record which backend drew them.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sfumato import demo
from sfumato.catalog.cards import Card, read_card, write_card
from sfumato.engine import int8
from sfumato.engine.backends import check_backend
from sfumato.engine.conversions import converted_folder, is_converted
from sfumato.engine.device import INT8, cpu_has_int8_units, cpu_name, pick_device
from sfumato.engine.loader import LoadOptions
from sfumato.errors import SfumatoError

if TYPE_CHECKING:
    from sfumato.engine.checkpoint import ModelSource
    from sfumato.studio import Studio

log = logging.getLogger(__name__)

# what /v1/health says
OFF = "off"
WAITING = "waiting for the warm-up"
QUANTIZING = "quantizing"
SWITCHED = "switched"  # the default model's jobs run in int8
KEPT = "kept the default"  # tried, and int8 did not win here
FAILED = "failed"

MIN_PSNR_DB = 28.0  # the demo model's int8 draws 35-36 dB from fp32 (tests/engine/test_shortcuts)
MAX_CALL_RATIO = 0.9  # int8 must save a tenth of a UNet call at least
CARD_TABLE = "int8"
NICE = 10  # the trial's priority below the server's jobs


class BackgroundInt8:
    """The int8 trial of one server's default model, and where it stands."""

    def __init__(self, studio: Studio, why_off: str | None = None):
        self.studio = studio
        self.status = OFF if why_off else WAITING
        self.message: str | None = why_off
        self.model: str | None = None
        self.figures: dict | None = None
        self._child: subprocess.Popen | None = None
        self._stopped = threading.Event()

    def view(self) -> dict:
        return {
            "status": self.status,
            "model": self.model,
            "message": self.message,
            "figures": self.figures,
        }

    def start(self, source: ModelSource | None, options: LoadOptions) -> None:
        """The warm-up is over: try ``source`` (the model it warmed; None: it did not) in
        int8, in a thread of its own."""
        if self.status != WAITING:
            return
        if source is None:
            self._end(OFF, "The default model did not warm up, so it is not tried in int8.")
            return
        self.model = source.name
        if why := self._why_not(options):
            self._end(OFF, why)
            return
        threading.Thread(
            target=self._run, args=(source, options), name="sfumato-int8", daemon=True
        ).start()

    def stop(self) -> None:
        """The server is stopping: the trial's process goes with it (it starts over, or
        reads the cache, at the next start)."""
        self._stopped.set()
        if self._child is not None and self._child.poll() is None:
            self._child.kill()

    def _why_not(self, options: LoadOptions) -> str | None:
        if options.dtype not in (None, "auto"):
            return f"The server runs --dtype {options.dtype}."
        if check_backend(options.backend, pick_device(options.device)) != "openvino":
            return "int8 runs on the OpenVINO backend, on the CPU; this server runs PyTorch."
        if not cpu_has_int8_units():
            return "This CPU has no int8 dot products (VNNI or AMX): int8 would gain little."
        try:
            int8.check_installed()
        except SfumatoError as e:
            return e.message
        return None

    def _run(self, source: ModelSource, options: LoadOptions) -> None:
        try:
            recorded = _recorded(source)
            folder = converted_folder(options.cache_dir, source.path, options.lightning, INT8)
            if recorded and recorded.get("cpu") == cpu_name() and is_converted(folder):
                self.figures = recorded  # tried on this CPU before: no need to again
            else:
                self.status = QUANTIZING
                log.info("Trying %s in int8, in the background", source.name)
                self.figures = self._trial(source, options)
                if self._stopped.is_set():
                    return
                if "error" in self.figures:
                    self._end(FAILED, self.figures["error"])
                    return
                self.figures |= _decide(self.figures)
                _record(source, self.figures)
        except Exception as e:  # never the server's end: it runs on the default
            log.exception("The int8 trial failed")
            self._end(FAILED, f"The int8 trial failed: {str(e).splitlines()[0][:300]}")
            return
        if self.figures.get("switched"):
            self.studio.model_cache.run_in_int8(source.path)
            self._end(SWITCHED, None)
            log.info("%s now runs in int8: %s", source.name, self.figures)
        else:
            self._end(KEPT, self.figures.get("reason"))

    def _trial(self, source: ModelSource, options: LoadOptions) -> dict:
        given = {
            "model": str(source.path),
            "cache_dir": str(options.cache_dir),
            "config_dir": str(options.config_dir) if options.config_dir else None,
            "lightning": str(options.lightning) if options.lightning else None,
        }
        if self._stopped.is_set():
            return {}
        command = [sys.executable, "-m", "sfumato.engine.int8_trial", json.dumps(given)]
        self._child = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        if hasattr(os, "setpriority"):  # below the server's jobs (not on Windows)
            os.setpriority(os.PRIO_PROCESS, self._child.pid, NICE)
        out, err = self._child.communicate()
        if self._child.returncode:
            if self._stopped.is_set():
                return {}
            killed = self._child.returncode == -9
            why = (
                "it was killed (out of memory?)"
                if killed
                else (err.strip().splitlines() or ["no output"])[-1][:300]
            )
            return {"error": f"The int8 quantization of {source.name} stopped: {why}"}
        return json.loads(out.strip().splitlines()[-1])

    def _end(self, status: str, message: str | None) -> None:
        self.message = message
        self.status = status


def _decide(figures: dict) -> dict:
    """Whether the server switches, on the trial's figures, and why not."""
    ratio = figures["unet_call_s"] / figures["default_unet_call_s"]
    reason = None
    if ratio > MAX_CALL_RATIO:
        reason = (
            f"A UNet call took {ratio:.2f}x the default's time in int8: too little to switch "
            f"(at most {MAX_CALL_RATIO}x)."
        )
    elif figures["psnr_db"] < MIN_PSNR_DB:
        reason = (
            f"int8's pictures were {figures['psnr_db']} dB from the default's "
            f"(at least {MIN_PSNR_DB:.0f} needed)."
        )
    decided = {
        "switched": reason is None,
        "call_ratio": round(ratio, 2),
        "cpu": cpu_name(),
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return decided | ({"reason": reason} if reason else {})


def _recorded(source: ModelSource) -> dict | None:
    try:
        card = read_card(source.path)
    except SfumatoError:
        return None
    return card.extra.get(CARD_TABLE) if card else None


def _record(source: ModelSource, figures: dict) -> None:
    """The trial's figures in the model's card (made if it has none); not for the bundled
    demo model, whose folder is sfumato's own (it is tried again at each start: seconds)."""
    if source.path == demo.WEIGHTS:
        return
    try:
        card = read_card(source.path) or Card()
        card.extra[CARD_TABLE] = {k: v for k, v in figures.items() if v is not None}
        write_card(source.path, card)
    except (OSError, SfumatoError) as e:  # a read-only models folder: said, not fatal
        log.warning("Could not record the int8 trial in %s's card: %s", source.name, e)
