"""Run a graph on this machine, without a server: ``sfumato workflow run``.

Models come from the catalog's folders (as ``sfumato generate`` finds them), each loaded once;
``LoadImage`` reads a file named by its path (relative to the graph's file, or absolute);
``SaveImage`` writes PNGs with the graph embedded as ComfyUI embeds it, into the outputs
folder (``outputs/<subfolder>/<prefix>_00001_.png``, numbered after those there) or to the
file the user names. ``PreviewImage`` pictures are not written: nobody is there to see them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from PIL import Image as PILImage

from sfumato.catalog.cards import describe_model
from sfumato.catalog.hashes import HashCache
from sfumato.catalog.scan import CHECKPOINT, LORA, UPSCALER, VAE, Catalog, Models, find_loras
from sfumato.datadir import DataDir
from sfumato.engine.images import MAX_INPUT_PIXELS
from sfumato.engine.loader import LoadedModel, LoadOptions, load_model
from sfumato.engine.loras import LoraSpec
from sfumato.errors import InvalidRequest, ModelNotFound, NotFound, OutputExists
from sfumato.workflows import outputs as files
from sfumato.workflows import samplers
from sfumato.workflows.info import installed
from sfumato.workflows.nodes import NODES
from sfumato.workflows.saved import graph_from_png, parse_graph
from sfumato.workflows.spec import FLOAT, INT, LINKED, Choices
from sfumato.workflows.values import Context, ModelRef, Pictures

PICTURE_NODES = ("LoadImage", "LoadImageMask")
Progress = Callable[[str, int, int], None]  # (node id, step done, steps of that sampler)


def read_graph(path: Path) -> dict:
    """The graph in a ComfyUI API JSON file, or in a PNG that carries one."""
    path = Path(path)
    try:
        content = path.read_bytes()
    except OSError as e:
        raise NotFound(f"Cannot read {path}: {e.strerror or e}.") from None
    if content.startswith(b"\x89PNG"):
        return graph_from_png(content, path.name)
    return parse_graph(content, path.name)


def set_values(graph: dict, assignments: list[str]) -> dict:
    """``["6.text=a lighthouse", "3.seed=5"]`` set into the graph (numbers as numbers);
    the graph's validation then checks them as any graph's."""
    for assignment in assignments:
        target, sep, value = assignment.partition("=")
        node_id, dot, name = target.strip().partition(".")
        if not sep or not dot or not node_id or not name:
            raise InvalidRequest(
                f'--set {assignment!r}: write NODE.INPUT=VALUE, e.g. --set 6.text="a fox".'
            )
        node = graph.get(node_id)
        if not isinstance(node, dict):
            nodes = ", ".join(sorted(graph, key=lambda i: (len(i), i))[:40])
            raise InvalidRequest(f"--set {target}: the graph has no node {node_id!r} ({nodes}).")
        kind = NODES.get(node.get("class_type"))
        if kind is not None:
            spec = kind.input(name)
            values = [i.name for i in kind.inputs if i.type not in LINKED]
            if spec is None or spec.type in LINKED:
                raise InvalidRequest(
                    f"--set {target}: {kind.name} (node {node_id}) has no value input "
                    f"{name!r}; it has: {', '.join(values) or 'none'}."
                )
            value = _typed(value, spec.type)
        inputs = node.setdefault("inputs", {})
        if isinstance(inputs.get(name), list):
            raise InvalidRequest(f"--set {target}: that input is a link from another node.")
        inputs[name] = value
    return graph


def _typed(value: str, kind: str):
    """A number where the input takes one, so that the graph embedded in the pictures reads
    as ComfyUI's own; anything else is left for the validation to name."""
    try:
        return int(value) if kind == INT else float(value) if kind == FLOAT else value
    except ValueError:
        return value


class LocalContext(Context):
    def __init__(
        self,
        graph_file: Path | None = None,
        output: Path | None = None,
        overwrite: bool = False,
        load: LoadOptions | None = None,
        data_dir: Path | None = None,
        models_dirs: list[Path] | None = None,
        on_progress: Progress | None = None,
    ):
        self.data = DataDir.resolve(data_dir)
        self.base = Path(graph_file).parent if graph_file else Path.cwd()
        self.output, self.overwrite = output, overwrite
        self.load_options = (load or LoadOptions()).cached_in(self.data.cache)
        folders = self.data.model_dirs(models_dirs)
        scan = functools.cache(lambda: Catalog.scan(folders))
        self.models = Models(folders, HashCache(self.data.hashes), scan)
        self.on_progress = on_progress
        self.loaded: dict[Path, LoadedModel] = {}
        self.graph: dict = {}  # the graph being run: embedded in its pictures
        self.saved: list[Path] = []

    def choices(self, graph: dict) -> Choices:
        """What the graph may name here: the installed models, and the picture files that
        its ``LoadImage`` nodes name and that exist."""
        pictures = []
        for node in graph.values():
            if isinstance(node, dict) and node.get("class_type") in PICTURE_NODES:
                name = (node.get("inputs") or {}).get("image")
                if isinstance(name, str) and self._path(name).is_file():
                    pictures.append(name)
        return Choices(
            checkpoints=list(installed(self.models, CHECKPOINT)),
            loras=list(installed(self.models, LORA)),
            vaes=list(installed(self.models, VAE)),
            upscale_models=list(installed(self.models, UPSCALER)),
            images=pictures,
            samplers=list(samplers.SAMPLERS),
            schedulers=list(samplers.SCHEDULERS),
        )

    def _path(self, name: str) -> Path:
        path = Path(name).expanduser()
        return path if path.is_absolute() else self.base / path

    def checkpoint(self, name: str) -> ModelRef:
        path = installed(self.models, CHECKPOINT).get(name)
        if path is None:
            raise ModelNotFound(f"The model {name} is not installed.")
        return ModelRef(name, path)

    def load(self, model: ModelRef) -> LoadedModel:
        if model.path not in self.loaded:
            self.loaded[model.path] = load_model(describe_model(model.path), self.load_options)
        return self.loaded[model.path]

    def lora(self, name: str, strength: float, model: LoadedModel) -> LoraSpec:
        return find_loras([(Path(name).stem, strength)], self.models, model.source)[0]

    def vae_file(self, name: str) -> Path:
        path = installed(self.models, VAE).get(name)
        if path is None:
            raise ModelNotFound(f"The VAE {name} is not installed.")
        return path

    def picture(self, name: str) -> PILImage.Image:
        path = self._path(name)
        try:
            picture = PILImage.open(path)
            if picture.width * picture.height > MAX_INPUT_PIXELS:
                raise InvalidRequest(f"{path} is too large a picture.")
            picture.load()
        except (OSError, PILImage.DecompressionBombError) as e:
            raise InvalidRequest(f"{path} is not a picture sfumato can read ({e}).") from None
        return picture

    def picture_key(self, name: str) -> str:
        path = self._path(name)
        stat = path.stat() if path.exists() else None
        return f"{path}:{stat.st_mtime_ns}:{stat.st_size}" if stat else name

    def progress(self, node_id, done, total, latents, previewer) -> None:
        if self.on_progress is not None:
            self.on_progress(node_id, done, total)

    def save(self, node_id: str, pictures: Pictures, prefix: str, temporary: bool) -> list[dict]:
        if temporary:
            return []
        subfolder, stem = files.split_prefix(prefix)
        written = []
        for picture in pictures.images:
            path = self._next_path(subfolder, stem)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(files.comfy_png(picture, self.graph, None))
            self.saved.append(path)
            written.append({"filename": path.name, "subfolder": subfolder, "type": "output"})
        return written

    def _next_path(self, subfolder: str, stem: str) -> Path:
        if self.output is not None:
            path = self.output
            if self.saved:  # a second picture: beside the first, numbered
                path = path.with_name(f"{path.stem}-{len(self.saved) + 1}{path.suffix}")
            if path.exists() and not self.overwrite:
                raise OutputExists(
                    f"{path} already exists. Choose another name, or pass --overwrite."
                )
            return path
        folder = self.data.outputs / subfolder if subfolder else self.data.outputs
        taken = [p.name for p in folder.glob(f"{stem}_*_.png")] if folder.is_dir() else []
        numbers = [int(n[len(stem) + 1 : -5]) for n in taken if n[len(stem) + 1 : -5].isdigit()]
        return folder / f"{stem}_{max(numbers, default=0) + 1:05}_.png"
