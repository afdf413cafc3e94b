"""What a node is: its inputs (ComfyUI's names, types, defaults and limits), its outputs, and
the function that runs it. ``object_info`` renders a node as ComfyUI's ``/object_info`` does,
which is what ComfyUI clients read to fill their model and sampler lists."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# the kinds of value that travel on links, as ComfyUI names them
MODEL, CLIP, VAE = "MODEL", "CLIP", "VAE"
CONDITIONING, LATENT, IMAGE, MASK = "CONDITIONING", "LATENT", "IMAGE", "MASK"
UPSCALE_MODEL = "UPSCALE_MODEL"
LINKED = (MODEL, CLIP, VAE, CONDITIONING, LATENT, IMAGE, MASK, UPSCALE_MODEL)
# the kinds typed in as values
INT, FLOAT, STRING, COMBO = "INT", "FLOAT", "STRING", "COMBO"
MAX_RESOLUTION = 16384
MAX_SEED = 0xFFFFFFFFFFFFFFFF


@dataclass(frozen=True)
class Choices:
    """What a user may name in a graph: installed files and their own uploads."""

    checkpoints: Sequence[str] = ()
    loras: Sequence[str] = ()
    vaes: Sequence[str] = ()
    upscale_models: Sequence[str] = ()
    images: Sequence[str] = ()  # the user's uploads, by the names ComfyUI clients gave them
    samplers: Sequence[str] = ()
    schedulers: Sequence[str] = ()

    def of(self, name: str) -> list[str]:
        return list(getattr(self, name))


@dataclass(frozen=True)
class Input:
    name: str
    type: str  # one of LINKED, or INT, FLOAT, STRING, COMBO
    options: dict = field(default_factory=dict)  # default, min, max, step, multiline, ...
    # a COMBO's values: fixed, or the name of a ``Choices`` list (the installed models)
    values: tuple[str, ...] | str = ()
    optional: bool = False

    def spec(self, choices: Choices) -> list:
        """This input as /object_info writes it: ``["INT", {...}]`` or ``[[values], {...}]``."""
        if self.type == COMBO:
            listed = choices.of(self.values) if isinstance(self.values, str) else self.values
            first: object = list(listed)
        else:
            first = self.type
        return [first, dict(self.options)] if self.options else [first]

    def allowed(self, choices: Choices) -> list[str]:
        return choices.of(self.values) if isinstance(self.values, str) else list(self.values)


@dataclass(frozen=True)
class Node:
    name: str  # the class_type
    display_name: str
    category: str
    description: str
    inputs: tuple[Input, ...]
    outputs: tuple[str, ...]
    run: Callable  # run(context, **inputs) -> tuple of outputs, or Saved for output nodes
    output_names: tuple[str, ...] | None = None
    output_node: bool = False
    hidden: dict = field(default_factory=dict)

    def input(self, name: str) -> Input | None:
        return next((i for i in self.inputs if i.name == name), None)

    def object_info(self, choices: Choices) -> dict:
        required = {i.name: i.spec(choices) for i in self.inputs if not i.optional}
        optional = {i.name: i.spec(choices) for i in self.inputs if i.optional}
        groups = {"required": required} | ({"optional": optional} if optional else {})
        groups |= {"hidden": dict(self.hidden)} if self.hidden else {}
        return {
            "input": groups,
            "input_order": {group: list(names) for group, names in groups.items()},
            "output": list(self.outputs),
            "output_is_list": [False] * len(self.outputs),
            "output_name": list(self.output_names or self.outputs),
            "name": self.name,
            "display_name": self.display_name,
            "description": self.description,
            "python_module": "nodes",
            "category": self.category,
            "output_node": self.output_node,
        }
