"""One generation from request to saved files: resolve the model, fill in the settings, run
the engine, write each picture with its metadata. The CLI uses all of it; the server's worker
plans from a stored job (``plan``) and stores the pictures its own way (``metadata``)."""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image

from sfumato import __version__
from sfumato.catalog.cards import describe_model
from sfumato.catalog.hashes import HashCache
from sfumato.catalog.scan import Catalog, Models, find_checkpoint, find_loras
from sfumato.catalog.upscalers import hires_upscaler, model_names
from sfumato.datadir import DataDir
from sfumato.engine.checkpoint import ModelSource
from sfumato.engine.generate import StepCallback, generate
from sfumato.engine.hires import built_in
from sfumato.engine.images import ImageInputs
from sfumato.engine.images import prepare as prepare_images
from sfumato.engine.loader import LoadedModel, LoadOptions, load_model
from sfumato.engine.loras import LoraSpec
from sfumato.engine.request import (
    GenerationRequest,
    GenerationSettings,
    requested_loras,
    resolve,
    with_variations,
)
from sfumato.engine.samplers import get_sampler
from sfumato.errors import OutputExists
from sfumato.metadata.a1111 import format_parameters
from sfumato.metadata.files import image_format, save_image
from sfumato.upscale.run import Upscaler


@dataclass
class GenerationJob:
    data: DataDir
    source: ModelSource
    settings: GenerationSettings
    load_options: LoadOptions
    outputs: list[Path] = field(default_factory=list)  # the CLI's files; the server picks its own
    overwrite: bool = False
    warnings: list[str] = field(default_factory=list)
    inputs: ImageInputs | None = None  # image-to-image and inpainting
    loras: list[LoraSpec] = field(default_factory=list)
    model: LoadedModel | None = None
    model_hash: str | None = None  # AutoV2, for single files; read when first saving
    upscaler: Upscaler | None = None  # the hires fix's, when hr_upscaler names a model file

    @classmethod
    def prepare(
        cls,
        request: GenerationRequest,
        model: str | None = None,
        output: Path | None = None,
        image_format: str = "png",
        overwrite: bool = False,
        family: str | None = None,
        load: LoadOptions | None = None,
        data_dir: Path | None = None,
        models_dirs: list[Path] | None = None,
    ) -> GenerationJob:
        """Check everything that can be checked before the (slow) model load."""
        data = DataDir.resolve(data_dir)
        load = (load or LoadOptions()).cached_in(data.cache)
        folders = data.model_dirs(models_dirs)
        # the catalog is scanned once, and only if a name has to be looked up
        scan = functools.cache(lambda: Catalog.scan(folders))
        models = Models(folders, HashCache(data.hashes), scan)
        source = describe_model(find_checkpoint(model, models), family, load.lightning)
        job = cls.plan(request, source, data, load, models)
        job.outputs = _output_paths(data, job.settings, output, image_format, overwrite)
        job.overwrite = overwrite
        return job

    @classmethod
    def plan(
        cls,
        request: GenerationRequest,
        source: ModelSource,
        data: DataDir,
        load: LoadOptions,
        models: Models,
    ) -> GenerationJob:
        """The settings, LoRAs and input pictures of ``request`` on the model ``source``."""
        installed = ()  # the upscaler models, read only when the hires fix names one
        if request.hr_upscaler and not built_in(request.hr_upscaler):
            installed = model_names(models.scan())
        defaults = source.effective_defaults
        settings, warnings = resolve(request, source.family, defaults, installed)
        settings, varied = with_variations(settings, data.wildcards)
        warnings += varied
        loras = find_loras(requested_loras(request), models, source)
        settings = replace(settings, loras=tuple((x.name, x.weight, x.hash) for x in loras))
        inputs = None
        if request.init_image is not None:
            inputs = prepare_images(
                request.init_image, request.mask_image, settings.width, settings.height
            )
        upscaler = hires_upscaler(settings, models.scan) if installed else None
        return cls(data, source, settings, load, warnings=warnings, inputs=inputs, loras=loras,
                   upscaler=upscaler)  # fmt: skip

    @property
    def sampler_name(self) -> str:
        return get_sampler(self.settings.sampler).name

    def load(self) -> LoadedModel:
        if self.model is None:
            self.model = load_model(self.source, self.load_options)
        return self.model

    def render(
        self, on_step: StepCallback | None = None, cancel: threading.Event | None = None
    ) -> list[Image.Image]:
        return generate(
            self.load(), self.settings, self.inputs, on_step, cancel, self.loras, self.upscaler
        )

    def save(
        self, images: list[Image.Image], paths: list[Path], overwrite: bool = False
    ) -> list[tuple[Path, int]]:
        """Write each picture with its settings embedded; returns (path, seed) per picture."""
        saved = []
        for index, (image, path) in enumerate(zip(images, paths, strict=True)):
            settings, parameters, data = self.metadata(index)
            saved.append((save_image(image, path, parameters, data, overwrite), settings.seed))
        return saved

    def metadata(self, index: int) -> tuple[GenerationSettings, str, dict]:
        """Picture ``index``'s own settings, its A1111 parameters and our JSON."""
        if self.model_hash is None and self.source.layout == "single_file":
            self.model_hash = HashCache(self.data.hashes).autov2(self.source.path)
        lightning = self.load_options.lightning
        settings = self.settings.for_image(index)
        data = {
            "generator": f"sfumato {__version__}",
            "settings": settings.to_dict(),
            "model": {
                "name": self.source.name,
                "family": self.source.family.id,
                "hash": self.model_hash,
                "lightning": lightning.name if lightning else None,
                "backend": self.backend(),
            },
        }
        return settings, format_parameters(settings, self.source.name, self.model_hash), data

    def backend(self) -> str:
        """What ran the picture's UNet: pictures differ a little from one backend to another
        (and more in int8)."""
        if self.model is None:
            return "torch"
        return self.model.backend.name_for(self.loras)

    def run(self, on_step: StepCallback | None = None) -> list[tuple[Path, int]]:
        """Generate and save to ``outputs``; returns (path, seed) per picture."""
        return self.save(self.render(on_step), self.outputs, self.overwrite)


def _output_paths(
    data: DataDir, settings: GenerationSettings, output: Path | None, fmt: str, overwrite: bool
) -> list[Path]:
    if output is None:
        suffix = "." + fmt.lower().lstrip(".")
        image_format(Path("x" + suffix))  # refuses an unknown format now, not after generating
        return data.new_outputs(settings.seeds, suffix)
    image_format(output)
    if settings.batch_size == 1:
        paths = [output]
    else:
        paths = [
            output.with_name(f"{output.stem}-{i + 1}{output.suffix}")
            for i in range(settings.batch_size)
        ]
    if not overwrite:
        for path in paths:
            if path.exists():
                raise OutputExists(
                    f"{path} already exists. Choose another name, or pass --overwrite to "
                    "replace it."
                )
    return paths
