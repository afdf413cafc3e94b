"""The catalog: every model, LoRA and VAE in the models folders, with its card.

Folders are read in the layouts people already have: A1111 (``Stable-diffusion/``, ``Lora/``,
``LyCORIS/``, ``VAE/``), ComfyUI (``checkpoints/``, ``loras/``, ``vae/``), or a plain folder of
single files and diffusers folders, whose kind is read from the tensors. A file without a card
gets one inferred from its tensors and name. Nothing here loads weights: a scan reads headers,
so it takes a moment even for a big collection; a broken file or card is listed with the reason
and the scan goes on.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sfumato import demo
from sfumato.catalog.cards import Card, apply_card, read_card
from sfumato.catalog.hashes import HashCache
from sfumato.catalog.loras import LoraInfo, check_lora_fits, describe_lora, is_lora
from sfumato.catalog.naming import infer_lineage, normalise, version_key
from sfumato.engine.checkpoint import SINGLE_FILE_SUFFIXES, ModelSource, inspect_model, read_header
from sfumato.engine.loras import LoraSpec
from sfumato.errors import ModelNotFound, SfumatoError

CHECKPOINT, LORA, VAE, UPSCALER = "checkpoint", "lora", "vae", "upscaler"
# sub-folder -> the kind of file A1111 and ComfyUI keep there
KIND_FOLDERS = {
    "Stable-diffusion": CHECKPOINT,
    "checkpoints": CHECKPOINT,
    "Lora": LORA,
    "LyCORIS": LORA,
    "loras": LORA,
    "VAE": VAE,
    "vae": VAE,
    # upscaler models (``sfumato/upscale``): A1111's folders by architecture, ComfyUI's one
    "ESRGAN": UPSCALER,
    "RealESRGAN": UPSCALER,
    "SwinIR": UPSCALER,
    "DAT": UPSCALER,
    "HAT": UPSCALER,
    "upscale_models": UPSCALER,
}
MAX_DEPTH = 4  # sub-folders people sort their files into, without walking a whole disk
_HEX = re.compile(r"[0-9a-fA-F]{8,64}")


@dataclass
class Entry:
    kind: str  # checkpoint, lora, vae or upscaler
    path: Path
    card: Card
    source: ModelSource | None = None  # a checkpoint's engine description, card applied
    lora: LoraInfo | None = None
    broken: str | None = None  # why it cannot be used
    bundled: bool = False

    @property
    def name(self) -> str:
        return self.card.name or (self.path.name if self.path.is_dir() else self.path.stem)

    @property
    def family(self) -> str | None:
        if self.source:
            return self.source.family.id
        return self.card.family

    @property
    def lineage(self) -> str:
        return self.card.lineage or self.name

    @property
    def version(self) -> str | None:
        return self.card.version

    @property
    def display(self) -> str:
        return f"{self.lineage}@{self.version}" if self.version else self.name


@dataclass
class Catalog:
    entries: list[Entry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # warnings for the user, one sentence each

    @classmethod
    def scan(cls, folders: list[Path], bundled: bool = True) -> Catalog:
        catalog = cls()
        for folder in folders:
            folder = Path(folder).expanduser()
            if not folder.is_dir():
                catalog.problems.append(f"The models folder {folder} does not exist.")
                continue
            catalog._scan_folder(folder, None, 0)
        if bundled and (demo.WEIGHTS / "model_index.json").is_file():
            catalog._add(demo.WEIGHTS, CHECKPOINT, bundled=True)
        catalog._check_duplicates()
        return catalog

    def entry_at(self, path: Path) -> Entry | None:
        """The entry of the file or folder at ``path``, if the scan listed it."""
        return next((e for e in self.entries if e.path == path), None)

    @classmethod
    def describe(cls, path: Path) -> Entry:
        """One file or folder as a scan would list it, without reading its neighbours."""
        catalog = cls()
        catalog._add(path, CHECKPOINT if path.is_dir() else None)
        return catalog.entries[0]

    def _scan_folder(self, folder: Path, kind: str | None, depth: int) -> None:
        try:
            children = sorted(folder.iterdir())
        except OSError as e:
            self.problems.append(f"Cannot read {folder}: {e.strerror}.")
            return
        for entry in children:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                if (entry / "model_index.json").is_file():
                    self._add(entry, CHECKPOINT)
                elif depth < MAX_DEPTH:
                    self._scan_folder(entry, kind or KIND_FOLDERS.get(entry.name), depth + 1)
            elif entry.suffix.lower() in SINGLE_FILE_SUFFIXES:
                self._add(entry, kind)

    def _add(self, path: Path, kind: str | None, bundled: bool = False) -> None:
        card, card_problem = None, None
        try:
            card = read_card(path)
        except SfumatoError as e:
            card_problem = e.message
            self.problems.append(f"{e.message} Using what the files say instead.")
        entry = Entry(kind or CHECKPOINT, path, card or Card(inferred=True), bundled=bundled)
        try:
            # one read of a file's header tells its kind and, after that, what it is
            # a VAE's tensors say nothing we list; an upscaler's are read when it is described
            needed = path.is_file() and kind not in (VAE, UPSCALER)
            shapes, metadata = read_header(path) if needed else ({}, {})
            entry.kind = kind or _kind_of(shapes)
            if entry.kind == CHECKPOINT:
                source = inspect_model(path, card and card.family, shapes=shapes or None)
                entry.source = apply_card(source, card)
            elif entry.kind == LORA:
                entry.lora = describe_lora(shapes, metadata, path.name)
        except SfumatoError as e:
            entry.broken = e.message
            self.problems.append(f"{path} cannot be used: {e.message}")
        _fill_in(entry)
        if card_problem:
            entry.card.extra["problem"] = card_problem
        self.entries.append(entry)

    def _check_duplicates(self) -> None:
        seen: dict[tuple, Entry] = {}
        for e in self.entries:
            if e.version is None:
                continue
            key = (e.kind, normalise(e.lineage), e.version)
            if key in seen:
                self.problems.append(
                    f"{seen[key].path} and {e.path} both say they are {e.lineage} version "
                    f"{e.version}; both are listed. Give one another version in its card."
                )
            else:
                seen[key] = e

    # ---- lists

    def of_kind(self, kind: str) -> list[Entry]:
        return [e for e in self.entries if e.kind == kind]

    def lineages(self, kind: str = CHECKPOINT) -> dict[str, list[Entry]]:
        """Lineage -> its versions, newest first (deprecated ones after the others)."""
        groups: dict[str, list[Entry]] = defaultdict(list)
        for e in self.of_kind(kind):
            groups[normalise(e.lineage)].append(e)
        return {
            versions[0].lineage: versions
            for versions in (
                sorted(
                    g,
                    key=lambda e: (
                        not e.card.deprecated and not e.broken,
                        version_key(e.version),
                        _mtime(e.path),
                    ),
                    reverse=True,
                )
                for g in groups.values()
            )
        }

    def versions_of(self, entry: Entry) -> list[Entry]:
        """Every version of ``entry``'s lineage, newest first."""
        for versions in self.lineages(entry.kind).values():
            if normalise(versions[0].lineage) == normalise(entry.lineage):
                return versions
        return [entry]

    def listing(
        self,
        kind: str = CHECKPOINT,
        all_versions: bool = False,
        family: str | None = None,
        category: str | None = None,
    ) -> list[Entry]:
        """What a list shows: the newest version of each lineage, or every version."""
        rows = []
        for versions in self.lineages(kind).values():
            shown = [e for e in versions if not e.card.hidden] if not all_versions else versions
            rows.extend(shown if all_versions else shown[:1])
        if family:
            rows = [e for e in rows if e.family == family or _arch(e) == family]
        if category:
            rows = [e for e in rows if (e.card.category or "").lower() == category.lower()]
        return sorted(rows, key=lambda e: (e.bundled, normalise(e.lineage)))

    # ---- finding one

    def resolve(self, query: str, kind: str = CHECKPOINT, hashes: HashCache | None = None):
        """The entry a user means by ``query``: a name, a lineage (its newest version),
        ``lineage@version``, a unique beginning of a name, or a hash."""
        lineage_query, _, version = query.partition("@")
        q = normalise(lineage_query)
        if not version:
            named = [
                e for e in self.of_kind(kind) if q in (normalise(e.name), normalise(e.path.stem))
            ]
            if len(named) == 1:
                return self._usable(named[0])
        lineages = list(self.lineages(kind).values())
        matches = [v for v in lineages if normalise(v[0].lineage) == q] or [
            v
            for v in lineages
            if q and any(normalise(x).startswith(q) for e in v for x in (e.lineage, e.name))
        ]
        if len(matches) > 1:
            names = ", ".join(v[0].display for v in matches)
            raise ModelNotFound(f"'{query}' could mean several models: {names}. Which one?")
        if matches and not version:
            return self._usable(matches[0][0])
        if matches:
            versions = matches[0]
            for e in versions:
                if normalise(e.version or "") == normalise(version).lstrip("v"):
                    return self._usable(e)
            known = ", ".join(e.version or "(no version)" for e in versions)
            raise ModelNotFound(
                f"{versions[0].lineage} has no version {version}. Versions: {known}."
            )
        if hashes and _HEX.fullmatch(query) and (found := self.by_hash(query, kind, hashes)):
            return self._usable(found)
        kind_word = {CHECKPOINT: "model", LORA: "LoRA", VAE: "VAE"}[kind]
        names = ", ".join(e.display for e in self.listing(kind) if not e.broken) or "none"
        raise ModelNotFound(f"No {kind_word} named '{query}'. Installed: {names}.")

    def by_hash(self, prefix: str, kind: str, hashes: HashCache) -> Entry | None:
        """The entry whose sha256, AutoV2 or A1111 LoRA hash starts with ``prefix``."""
        prefix = prefix.lower()
        for e in self.of_kind(kind):
            if e.broken or not e.path.is_file():
                continue
            candidates = [hashes.sha256(e.path)]
            if e.path.suffix == ".safetensors":
                candidates.append(hashes.tensor_sha256(e.path))
            if any(h.startswith(prefix) for h in candidates):
                return e
        return None

    def default_checkpoint(self) -> Entry | None:
        """With no --model: the one model the user installed, else the bundled demo model."""
        own = [v for v in self.lineages().values() if not v[0].bundled and not v[0].broken]
        if len(own) == 1:
            return own[0][0]
        if not own:
            return next((e for e in self.of_kind(CHECKPOINT) if e.bundled), None)
        return None

    @staticmethod
    def _usable(entry: Entry) -> Entry:
        if entry.broken:
            # its name and file name, not its folder: a server does not show its disk
            raise ModelNotFound(
                f"{entry.display} ({entry.path.name}) cannot be used: {entry.broken}"
            )
        return entry


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _arch(entry: Entry) -> str | None:
    if entry.source:
        return entry.source.family.architecture
    return entry.lora.architecture if entry.lora else None


def _kind_of(shapes: dict[str, tuple]) -> str:
    """A loose file's kind, from its tensor names (a folder has none: a diffusers model)."""
    if is_lora(shapes):
        return LORA
    if not any(k.startswith("model.diffusion_model.") for k in shapes) and any(
        k.startswith(("decoder.", "first_stage_model.decoder.")) for k in shapes
    ):
        return VAE
    return CHECKPOINT


def _fill_in(entry: Entry) -> None:
    """What the card leaves out (all of it when there is none), from what the files say."""
    card = entry.card
    stem = entry.path.name if entry.path.is_dir() else entry.path.stem
    if entry.lora and entry.lora.output_name:
        stem = entry.lora.output_name
    lineage, version = infer_lineage(stem)
    if card.lineage is None:
        card.lineage = infer_lineage(card.name)[0] if card.name else lineage
        card.version = card.version or version
    if entry.source:
        card.family = entry.source.family.id
    elif entry.lora:
        card.family = card.family or entry.lora.architecture
        if not card.keywords:
            card.keywords = dict(list(entry.lora.tag_frequency.items())[:30])


def how_to_add(folders: list[Path]) -> str:
    where = " or ".join(str(f) for f in folders)
    return (
        f"Put a Stable Diffusion checkpoint (.safetensors) or a diffusers model folder in "
        f"{where}, or pass --model PATH."
    )


Scan = Callable[[], Catalog]  # the catalog, scanned when first needed


@dataclass(frozen=True)
class Models:
    """Where a generation looks up its model and LoRAs."""

    folders: list[Path]
    hashes: HashCache
    scan: Scan
    # the CLI takes any file the user names; the server only what its catalog lists, so that
    # no request can name a file elsewhere on the server's disk
    allow_paths: bool = True


def find_checkpoint(name: str | None, models: Models) -> Path:
    """The model file or folder a user means by --model (None: the default one)."""
    if models.allow_paths and name is not None and (path := Path(name).expanduser()).exists():
        return path
    catalog = models.scan()
    # a server's users cannot add models, nor should they learn its folders
    how = (
        how_to_add(models.folders) if models.allow_paths else "An admin of this server adds models."
    )
    if name is not None:
        try:
            return catalog.resolve(name, hashes=models.hashes).path
        except ModelNotFound as e:
            raise ModelNotFound(f"{e.message} {how}") from None
    if entry := catalog.default_checkpoint():
        return entry.path
    if not catalog.of_kind(CHECKPOINT):
        raise ModelNotFound(f"No model is installed. {how}")
    names = ", ".join(e.display for e in catalog.listing() if not e.bundled and not e.broken)
    choose = "choose one with --model" if models.allow_paths else 'choose one with "model"'
    raise ModelNotFound(f"Several models are installed; {choose}: {names}.")


def find_loras(
    wanted: list[tuple[str, float]], models: Models, model: ModelSource
) -> list[LoraSpec]:
    """The LoRA files a request names (installed names or paths), checked against the model."""
    if not wanted:
        return []
    specs = []
    for name, weight in wanted:
        path = Path(name).expanduser()
        if models.allow_paths and path.is_file():
            info = describe_lora(*read_header(path), path.name)
        else:
            entry = models.scan().resolve(name, LORA)
            path, info = entry.path, entry.lora
        check_lora_fits(name, info, model.name, model.family.architecture)
        specs.append(LoraSpec(path, name, weight, models.hashes.lora_hash(path)))
    return specs
