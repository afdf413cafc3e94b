"""OpenVINO reports each import of itself and each model conversion, and NNCF each
quantization, to Google Analytics through the ``openvino_telemetry`` package, unless a consent
file in the user's home folder says no (and writes a client id there). sfumato is
offline: ``switch_off`` puts a module in that package's place before anything imports it, so
that OpenVINO falls back to its own stand-in and NNCF takes ``NoReports``. Neither library has
a switch of its own for this, short of the consent file or pretending to be a CI job.
"""

from __future__ import annotations

import sys
import types


class NoReports:
    """``openvino_telemetry.Telemetry``'s calls, taken and dropped."""

    def __init__(self, *args, **kwargs):
        pass

    def _drop(self, *args, **kwargs) -> None:
        pass

    send_event = send_error = send_stack_trace = start_session = end_session = _drop
    force_shutdown = _drop


def switch_off() -> None:
    if "openvino_telemetry" not in sys.modules:  # imported already: too late to stop it
        stand_in = types.ModuleType("openvino_telemetry")
        stand_in.Telemetry = NoReports
        sys.modules["openvino_telemetry"] = stand_in
