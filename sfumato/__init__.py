"""sfumato: a self-hosted image generation studio and API for Stable Diffusion models."""

import os

# Offline first: nothing may reach a model hub unless the user asks for a download. These are
# read by huggingface_hub when it is first imported, so they are set before anything imports it.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DIFFUSERS_NO_ADVISORY_WARNINGS", "1")
# transformers warns at import that image processors want torchvision, which we keep out of
# the install on purpose (it would replace the CPU torch with a multi-GB CUDA build)
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

# nor may OpenVINO and NNCF send their usage reports (usage_reports.py)
from sfumato import usage_reports  # noqa: E402

usage_reports.switch_off()

__version__ = "0.1.0"
