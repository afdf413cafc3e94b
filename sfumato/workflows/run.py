"""Run a validated graph: each node once, in order, its inputs the outputs it links to.

A node whose inputs are what they were at the user's previous graph is not run again: its
outputs are taken from then (``NodeCache``), as ComfyUI does, so changing a sampler's seed
re-runs the sampler and what follows, not the prompt encoding before it. A node's identity
is a hash of its type, its values and the identities of the nodes it reads from, known
before anything runs, so the cached nodes are announced first (``execution_cached``).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable

from sfumato.errors import Cancelled
from sfumato.workflows.nodes import NODES, TAKES_NODE_ID
from sfumato.workflows.spec import LINKED
from sfumato.workflows.validate import Plan
from sfumato.workflows.values import Context

Report = Callable[[str, dict], None]  # (ComfyUI's event name, its data)


class NodeCache:
    """Each user's previous graph's node outputs, by node identity; the last few users'."""

    def __init__(self, users: int = 8):
        self._users: OrderedDict[object, dict[str, tuple]] = OrderedDict()
        self._size = users
        self._lock = threading.Lock()

    def of(self, user) -> dict[str, tuple]:
        with self._lock:
            return dict(self._users.get(user, {}))

    def clear(self) -> None:
        with self._lock:
            self._users.clear()

    def keep(self, user, outputs: dict[str, tuple]) -> None:
        with self._lock:
            self._users[user] = outputs
            self._users.move_to_end(user)
            while len(self._users) > self._size:
                self._users.popitem(last=False)


def identities(plan: Plan, ctx: Context) -> dict[str, str]:
    """Each node's identity: what it computes, whatever its id in this graph."""
    ids: dict[str, str] = {}
    for node_id in plan.order:  # upstream first
        node = plan.graph[node_id]
        parts = {"class_type": node["class_type"]}
        for name, value in sorted(node["inputs"].items()):
            if isinstance(value, list):
                parts[name] = [ids[value[0]], value[1]]
            elif node["class_type"] in ("LoadImage", "LoadImageMask") and name == "image":
                parts[name] = ctx.picture_key(value)
            else:
                parts[name] = value
        text = json.dumps(parts, sort_keys=True, default=str)
        ids[node_id] = hashlib.sha256(text.encode()).hexdigest()
    return ids


def run_graph(
    plan: Plan,
    ctx: Context,
    prompt_id: str,
    report: Report,
    cache: NodeCache | None = None,
    user=None,
    rerun_outputs: bool = False,
) -> dict[str, dict]:
    """Run ``plan``; returns each output node's ``{"images": [...]}``. ``rerun_outputs``:
    output nodes run even when unchanged (a saved workflow's run keeps its pictures each
    time, as a /v1/generations job does; ComfyUI's /prompt reports the earlier ones)."""
    ids = identities(plan, ctx)
    previous = cache.of(user) if cache is not None else {}
    cached = [
        node_id
        for node_id in plan.order
        if ids[node_id] in previous
        and not (rerun_outputs and NODES[plan.graph[node_id]["class_type"]].output_node)
    ]
    report("execution_cached", {"nodes": cached, "prompt_id": prompt_id})
    values: dict[str, tuple] = {}
    kept: dict[str, tuple] = {}
    outputs: dict[str, dict] = {}
    for node_id in plan.order:
        node_data = plan.graph[node_id]
        node = NODES[node_data["class_type"]]
        if node_id in cached:
            result = previous[ids[node_id]]
        else:
            if ctx.cancel is not None and ctx.cancel.is_set():
                raise Cancelled("The generation was cancelled.")
            report("executing", {"node": node_id, "display_node": node_id, "prompt_id": prompt_id})
            arguments = {}
            for spec in node.inputs:
                if spec.name not in node_data["inputs"]:
                    continue
                value = node_data["inputs"][spec.name]
                if spec.type in LINKED or isinstance(value, list):
                    source, slot = value
                    value = values[source][slot]
                arguments[spec.name] = value
            if node.name in TAKES_NODE_ID:
                arguments["node_id"] = node_id
            result = node.run(ctx, **arguments)
            if node.output_node:
                result = ({"images": result},)
        kept[ids[node_id]] = result
        values[node_id] = result
        if node.output_node:
            outputs[node_id] = result[0]
            report(
                "executed",
                {
                    "node": node_id,
                    "display_node": node_id,
                    "output": result[0],
                    "prompt_id": prompt_id,
                },
            )
    if cache is not None:
        cache.keep(user, kept)
    return outputs
