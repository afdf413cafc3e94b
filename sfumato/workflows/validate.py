"""A graph checked before it is queued, as ComfyUI checks it, with ComfyUI's error shape.

Everything a user can get wrong is found here, before the job waits in the queue: a node
type sfumato does not run, a missing or misnamed input, a link to a node that is not there or
to an output it does not have, a link of the wrong type, a value out of range or not in its
list (a model that is not installed), a cycle, a graph too large. Each is a node error naming
the node and the input, in ComfyUI's shape (``{"error": ..., "node_errors": {id: {"errors":
[{type, message, details, extra_info}], "dependent_outputs", "class_type"}}}``), so ComfyUI's
clients show it as they show ComfyUI's own.

The result, a ``Plan``, is the graph with its values converted (``"20"`` becomes 20, as
ComfyUI does), the order to run the nodes in, and the steps it will take.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sfumato.engine.parameters import MAX_PROMPT_CHARS
from sfumato.errors import InvalidRequest
from sfumato.workflows import samplers
from sfumato.workflows.nodes import NODES
from sfumato.workflows.spec import COMBO, FLOAT, INT, LINKED, STRING, Choices, Input, Node

# where a node's latent or pictures come from, for ``Plan.summary``'s sizes
_PICTURE_INPUTS = ("latent_image", "samples", "pixels", "image", "images")
MAX_NODES = 2000  # ComfyUI's largest shared graphs have a few hundred
MAX_ID = 64  # ComfyUI numbers its nodes; subgraphs write "12:3"
MAX_LISTED = 60  # a longer list of allowed values is counted, not printed


class GraphInvalid(InvalidRequest):
    """A graph that cannot run; ``body`` is ComfyUI's 400 answer."""

    code = "invalid_graph"

    def __init__(self, body: dict):
        error = body["error"]
        details = f" {error['details']}" if error.get("details") else ""
        super().__init__(f"{error['message'].rstrip('.')}.{details}")
        self.body = body


@dataclass
class Plan:
    graph: dict  # every node's inputs as they run (values converted)
    order: list[str]  # the nodes to run, each after the nodes it reads from
    outputs: list[str]  # output nodes
    steps: int  # sampling steps of the whole graph: the job's progress total
    checkpoints: list[str] = field(default_factory=list)  # in order of first use
    texts: list[str] = field(default_factory=list)  # its prompts, for the history's lists

    def summary(self, image_sizes: dict[str, tuple[int, int]]) -> dict:
        """What the job's ``settings`` column holds for a graph: its size, steps and the
        compute it will cost (``quotas.megapixel_steps``), and the pictures it will keep."""
        shapes: dict[str, tuple[int, int, int]] = {}  # node -> width, height, batch
        cost = 0.0
        pictures = 0
        for node_id in self.order:
            node = self.graph[node_id]
            kind, inputs = node["class_type"], node["inputs"]
            source = next((inputs[k] for k in _PICTURE_INPUTS if k in inputs), None)
            upstream = shapes.get(source[0], (512, 512, 1)) if source else (512, 512, 1)
            w, h, batch = upstream
            if kind == "EmptyLatentImage":
                shapes[node_id] = (inputs["width"], inputs["height"], inputs["batch_size"])
            elif kind in ("LoadImage", "LoadImageMask"):
                shapes[node_id] = (*image_sizes.get(inputs["image"], (512, 512)), 1)
            elif kind in ("LatentUpscale", "ImageScale"):
                shapes[node_id] = (inputs["width"] or w, inputs["height"] or h, batch)
            elif kind in ("LatentUpscaleBy", "ImageScaleBy"):
                scale = inputs["scale_by"]
                shapes[node_id] = (round(w * scale), round(h * scale), batch)
            else:
                shapes[node_id] = upstream
            if kind == "KSampler" and inputs["denoise"] > 0:
                cost += w * h * batch * inputs["steps"] / 1e6
            elif kind == "KSamplerAdvanced":
                run = min(inputs["steps"], inputs["end_at_step"]) - inputs["start_at_step"]
                cost += w * h * batch * max(0, run) / 1e6
            elif kind == "SaveImage":
                pictures += batch
        first = next((shapes[i] for i in self.order if i in shapes), (512, 512, 1))
        sampler = next(
            (
                self.graph[i]["inputs"]
                for i in self.order
                if "sampler_name" in self.graph[i]["inputs"]
            ),
            {},
        )
        return {
            "prompt": self.texts[0] if self.texts else "",
            "width": first[0],
            "height": first[1],
            "steps": self.steps,
            "seed": sampler.get("seed", sampler.get("noise_seed")),
            "sampler": sampler.get("sampler_name"),
            "batch_size": pictures,
            "megapixel_steps": round(cost, 3),
            "nodes": len(self.graph),
        }


def _error(kind: str, message: str, details: str = "", **extra) -> dict:
    return {"type": kind, "message": message, "details": details, "extra_info": extra}


def _refuse(error: dict, node_errors: dict | None = None):
    raise GraphInvalid({"error": error, "node_errors": node_errors or {}})


def validate(graph, choices: Choices) -> Plan:
    if not isinstance(graph, dict) or not graph:
        _refuse(_error("no_prompt", "No prompt provided", "The graph must be a JSON object "
                       "of nodes: {\"3\": {\"class_type\": ..., \"inputs\": {...}}}."))  # fmt: skip
    if len(graph) > MAX_NODES:
        _refuse(_error("invalid_prompt", "The graph is too large",
                       f"It has {len(graph)} nodes; at most {MAX_NODES} are run."))  # fmt: skip
    for node_id, node in graph.items():
        _check_node_shape(node_id, node)
    outputs = [i for i, n in graph.items() if NODES[n["class_type"]].output_node]
    if not outputs:
        _refuse(_error("prompt_no_outputs", "Prompt has no outputs",
                       "Add a SaveImage or PreviewImage node: they are what a graph runs "
                       "for."))  # fmt: skip
    checker = _Checker(graph, choices)
    failed: list[str] = []
    for output in outputs:
        if not checker.valid(output):
            failed.append(output)
    if checker.errors:
        node_errors = {
            node_id: {
                "errors": errors,
                "dependent_outputs": failed,
                "class_type": graph[node_id]["class_type"],
            }
            for node_id, errors in checker.errors.items()
        }
        details = "\n".join(
            f"{e['message']}: {e['details']}" for errors in checker.errors.values() for e in errors
        )
        _refuse(_error("prompt_outputs_failed_validation", "Prompt outputs failed validation",
                       details), node_errors)  # fmt: skip
    converted = {i: checker.converted[i] for i in checker.order}
    return Plan(
        converted, checker.order, outputs, checker.steps(), checker.checkpoints, checker.texts
    )


def _check_node_shape(node_id, node) -> None:
    if len(str(node_id)) > MAX_ID:
        details = f"Node ids are at most {MAX_ID} characters; one has {len(str(node_id))}."
        _refuse(_error("invalid_prompt", "A node id is too long", details))
    where = f"Node ID '#{node_id}'"
    if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
        _refuse(_error("invalid_prompt",
                       "Cannot execute because a node is missing the class_type property.",
                       where))  # fmt: skip
    kind = node["class_type"]
    if kind not in NODES:
        supported = ", ".join(sorted(NODES))
        error = _error(
            "invalid_prompt",
            f"Cannot execute because node {kind[:100]} does not exist.",
            f"{where}. sfumato runs these nodes: {supported}.",
        )
        _refuse(error, {str(node_id): {"errors": [error], "dependent_outputs": [],
                                       "class_type": kind[:100]}})  # fmt: skip
    if not isinstance(node.get("inputs", {}), dict):
        _refuse(_error("invalid_prompt", f"The inputs of node #{node_id} must be an object.",
                       where))  # fmt: skip


class _Checker:
    def __init__(self, graph: dict, choices: Choices):
        self.graph, self.choices = graph, choices
        self.errors: dict[str, list[dict]] = {}
        self.results: dict[str, bool] = {}
        self.state: dict[str, str] = {}
        self.converted: dict[str, dict] = {}
        self.order: list[str] = []
        self.checkpoints: list[str] = []
        self.texts: list[str] = []

    def valid(self, output: str) -> bool:
        """Whether the output node and all it reads from are valid. The nodes are visited
        depth first without recursion (a chain of a thousand nodes is fine), each checked
        after the nodes it reads from; a node met again on its own path is a cycle."""
        stack = [(output, iter(self._sources(output)))]
        self.state[output] = _VISITING
        while stack:
            node_id, sources = stack[-1]
            source = next(sources, None)
            if source is None:
                stack.pop()
                self.state[node_id] = _DONE
                self.results[node_id] = self._check(node_id)
            elif source not in self.state:
                self.state[source] = _VISITING
                stack.append((source, iter(self._sources(source))))
            elif self.state[source] == _VISITING:
                path = [n for n, _ in stack]
                cycle = " -> ".join([*path[path.index(source) :], source])
                self._add(node_id, _error("dependency_cycle", "Dependency cycle detected", cycle))
        return self.results[output]

    def _sources(self, node_id: str) -> list[str]:
        """The nodes this node's well-formed links read from."""
        found = []
        for value in self.graph[node_id].get("inputs", {}).values():
            linked = isinstance(value, list) and len(value) == 2
            source = str(value[0]) if linked and isinstance(value[0], str | int) else None
            if source in self.graph and source not in found:
                found.append(source)
        return found

    def _check(self, node_id: str) -> bool:
        node_data = self.graph[node_id]
        node = NODES[node_data["class_type"]]
        given = node_data.get("inputs", {})
        ok, values = True, {}
        for spec in node.inputs:
            if spec.name not in given:
                if spec.optional:
                    continue
                self._add(node_id, _error("required_input_missing", "Required input is missing",
                                          spec.name, input_name=spec.name))  # fmt: skip
                ok = False
                continue
            value = given[spec.name]
            if isinstance(value, list):
                ok = self._link(node_id, spec, value) and ok
                values[spec.name] = [str(value[0]), value[1]] if len(value) == 2 else value
                continue
            converted = self._value(node_id, spec, value)
            if converted is _BAD:
                ok = False
            else:
                values[spec.name] = converted
        if ok:
            ok = self._node_rules(node_id, node, values)
        if ok:
            self.converted[node_id] = {"class_type": node.name, "inputs": values} | (
                {"_meta": node_data["_meta"]} if isinstance(node_data.get("_meta"), dict) else {}
            )
            self.order.append(node_id)
        return ok

    def _add(self, node_id: str, error: dict) -> None:
        self.errors.setdefault(node_id, []).append(error)

    def _link(self, node_id: str, spec: Input, value: list) -> bool:
        bad = _error(
            "bad_linked_input",
            "Bad linked input, must be a length-2 list of [node_id, slot_index]",
            spec.name, input_name=spec.name, received_value=str(value)[:200],
        )  # fmt: skip
        if len(value) != 2 or not isinstance(value[0], str | int) or type(value[1]) is not int:
            self._add(node_id, bad)
            return False
        source_id, slot = str(value[0]), value[1]
        if source_id not in self.graph:
            bad["details"] = f"{spec.name}: node {source_id[:50]} is not in the graph"
            self._add(node_id, bad)
            return False
        source = NODES[self.graph[source_id]["class_type"]]
        if not 0 <= slot < len(source.outputs):
            bad["details"] = (
                f"{spec.name}: {source.name} (node {source_id}) has {len(source.outputs)} "
                f"output(s), numbered from 0; got {slot}"
            )
            self._add(node_id, bad)
            return False
        received, expected = source.outputs[slot], spec.type
        if received != expected:
            self._add(node_id, _error(
                "return_type_mismatch", "Return type mismatch between linked nodes",
                f"{spec.name}, received_type({received}) mismatch input_type({expected})",
                input_name=spec.name, received_type=received, linked_node=[source_id, slot],
            ))  # fmt: skip
            return False
        # read from a node checked already; one on a cycle has no result (its error is said)
        return self.results.get(source_id, False)

    def _value(self, node_id: str, spec: Input, value):
        if spec.type in LINKED:
            self._add(node_id, _error(
                "bad_linked_input",
                "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                f"{spec.name} takes a {spec.type} from another node's output",
                input_name=spec.name, received_value=str(value)[:200],
            ))  # fmt: skip
            return _BAD
        try:
            converted = _convert(spec, value)
        except (TypeError, ValueError, OverflowError) as e:
            self._add(node_id, _error(
                "invalid_input_type",
                f"Failed to convert an input value to a {spec.type} value",
                f"{spec.name}, {str(value)[:100]}, {e}", input_name=spec.name,
                received_value=str(value)[:200],
            ))  # fmt: skip
            return _BAD
        options = spec.options
        if spec.type in (INT, FLOAT):
            if "min" in options and converted < options["min"]:
                self._add(node_id, _error(
                    "value_smaller_than_min",
                    f"Value {converted} smaller than min of {options['min']}", spec.name,
                    input_name=spec.name, received_value=converted,
                ))  # fmt: skip
                return _BAD
            if "max" in options and converted > options["max"]:
                self._add(node_id, _error(
                    "value_bigger_than_max",
                    f"Value {converted} bigger than max of {options['max']}", spec.name,
                    input_name=spec.name, received_value=converted,
                ))  # fmt: skip
                return _BAD
        if spec.type == COMBO:
            allowed = spec.allowed(self.choices)
            if converted not in allowed:
                listed = (
                    ", ".join(allowed) if len(allowed) <= MAX_LISTED
                    else f"(list of length {len(allowed)})"
                )  # fmt: skip
                self._add(node_id, _error(
                    "value_not_in_list", "Value not in list",
                    f"{spec.name}: '{converted[:200]}' not in [{listed}]",
                    input_name=spec.name, received_value=converted[:200],
                ))  # fmt: skip
                return _BAD
        return converted

    def _node_rules(self, node_id: str, node: Node, values: dict) -> bool:
        """What one input alone cannot tell."""
        if "sampler_name" in values and "scheduler" in values:
            problem = samplers.scheduler_problem(values["sampler_name"], values["scheduler"])
            if problem:
                error = _error(
                    "custom_validation_failed",
                    "Custom validation failed for node",
                    f"scheduler - {problem}",
                    input_name="scheduler",
                )
                self._add(node_id, error)
                return False
        if node.name == "CheckpointLoaderSimple" and values["ckpt_name"] not in self.checkpoints:
            self.checkpoints.append(values["ckpt_name"])
        if node.name == "CLIPTextEncode" and values["text"].strip():
            self.texts.append(values["text"])
        return True

    def steps(self) -> int:
        total = 0
        for node_id in self.order:
            node = self.converted[node_id]
            inputs = node["inputs"]
            if node["class_type"] == "KSampler" and inputs["denoise"] > 0:
                total += inputs["steps"]
            elif node["class_type"] == "KSamplerAdvanced":
                total += max(
                    0, min(inputs["steps"], inputs["end_at_step"]) - inputs["start_at_step"]
                )
        return total


_BAD = object()
_VISITING, _DONE = "visiting", "done"


def _convert(spec: Input, value):
    if isinstance(value, dict | list) or value is None:
        raise TypeError(f"a {type(value).__name__} is not a value")
    if spec.type == INT:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError("not a whole number")
        return int(value)
    if spec.type == FLOAT:
        number = float(value)
        if not math.isfinite(number):
            raise ValueError("not a finite number")
        return number
    if spec.type == STRING:
        text = str(value)
        if len(text) > MAX_PROMPT_CHARS:
            raise ValueError(f"longer than {MAX_PROMPT_CHARS} characters")
        return text
    if spec.type == COMBO:
        return str(value)
    return value
