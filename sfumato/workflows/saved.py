"""Saved workflows: a graph its owner keeps under a name, with the inputs they expose.

``{"prompt": ["6", "text"], "seed": ["3", "seed"]}`` names a value of the graph (node 6's
``text``) so that a run sets it by a short name, as a form or a script does, without knowing
the graph. A graph is checked when saved (a broken one is refused with ComfyUI's node
errors) and again when run: the given values go through the same validation as any graph.

Who sees what: a user sees their own workflows and the published ones; an admin publishes a
workflow for everyone. Another user's private workflow is "not found", as a missing one is;
a published one of another user is runnable but only an admin may delete it.
"""

from __future__ import annotations

import copy
import json
import re
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sfumato.errors import Conflict, Forbidden, InvalidRequest, NotFound, TooLarge
from sfumato.metadata.read import read_texts
from sfumato.store.tables import User, Workflow, utcnow
from sfumato.workflows.nodes import NODES
from sfumato.workflows.spec import LINKED
from sfumato.workflows.submit import plan_graph, submit_graph

if TYPE_CHECKING:
    from sfumato.store.tables import Job
    from sfumato.studio import Studio

SOURCE = "workflow"  # the jobs' source, beside "web", "api", "comfyui", ...
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # a URL path segment as it is
INPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
NAME_RULE = "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
INPUT_RULE = "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or '_'"
MAX_GRAPH_BYTES = 2_000_000  # ComfyUI's largest shared API graphs are a few hundred kB
MAX_INPUTS = 64  # a form, not a second graph
MAX_DESCRIPTION = 2000
MAX_PER_USER = 500
MAX_DEPTH = 32  # a graph nests 4 deep (node, inputs, link); its _meta a little more


# ---- reading and checking


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _too_deep(value) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                return True
            stack.extend(
                (x, depth + 1) for x in (item.values() if isinstance(item, dict) else item)
            )
    return False


def check_name(name) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InvalidRequest(f"A workflow's name has {NAME_RULE}.")
    return name


def graph_from_png(content: bytes, what: str = "The picture") -> dict:
    """The API graph a picture carries as ComfyUI embeds it (its ``prompt`` text chunk),
    read without decoding the pixels and bounded in size and depth."""
    texts = read_texts(content, what)
    raw = texts.get("prompt")
    if raw is None:
        ui = " It carries ComfyUI's editor workflow only: export the API format instead." \
            if "workflow" in texts else ""  # fmt: skip
        raise InvalidRequest(f"{what} carries no ComfyUI API graph (a 'prompt' text chunk).{ui}")
    return parse_graph(raw, what)


def parse_graph(raw: str | bytes, what: str = "The file") -> dict:
    """A graph from JSON text: an object, bounded in size and depth, without NaN."""
    if len(raw) > MAX_GRAPH_BYTES:
        raise TooLarge(f"{what}'s graph is larger than {MAX_GRAPH_BYTES // 1_000_000} MB.")
    try:
        graph = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise InvalidRequest(f"{what} does not hold a graph in valid JSON.") from None
    if _too_deep(graph):
        raise InvalidRequest(f"{what}'s graph nests more than {MAX_DEPTH} deep; none does.")
    if isinstance(graph, dict) and isinstance(graph.get("prompt"), dict):
        graph = graph["prompt"]  # a /prompt request body saved as it was sent
    if not isinstance(graph, dict):
        raise InvalidRequest(f"{what} does not hold a graph (a JSON object of nodes).")
    if isinstance(graph.get("nodes"), list) and "links" in graph:
        raise InvalidRequest(
            f"{what} holds ComfyUI's editor workflow, not its API format: in ComfyUI, "
            "export it with 'Export (API)' (or 'Save (API Format)')."
        )
    return graph


def value_inputs(graph: dict) -> dict[str, list[str]]:
    """Each node's inputs that hold a value (not a link), as a page lists them to expose."""
    found: dict[str, list[str]] = {}
    for node_id, node in graph.items():
        kind = NODES.get(node.get("class_type")) if isinstance(node, dict) else None
        if kind is None:
            continue
        given = node.get("inputs") if isinstance(node.get("inputs"), dict) else {}
        found[node_id] = [
            spec.name
            for spec in kind.inputs
            if spec.type not in LINKED and not isinstance(given.get(spec.name), list)
        ]
    return found


def check_inputs(graph: dict, inputs) -> dict[str, list[str]]:
    """The exposed inputs: name -> [node id, input name], each a value input of the graph."""
    if inputs is None:
        return {}
    if not isinstance(inputs, dict):
        raise InvalidRequest(
            'inputs must be an object: {"prompt": ["6", "text"], "seed": ["3", "seed"]}.'
        )
    if len(inputs) > MAX_INPUTS:
        raise InvalidRequest(f"A workflow exposes at most {MAX_INPUTS} inputs.")
    checked: dict[str, list[str]] = {}
    for name, target in inputs.items():
        if not INPUT_NAME.fullmatch(name):
            raise InvalidRequest(f"The input name {name[:70]!r} is not allowed: {INPUT_RULE}.")
        if (
            not isinstance(target, list)
            or len(target) != 2
            or not all(isinstance(x, str | int) and not isinstance(x, bool) for x in target)
        ):
            raise InvalidRequest(
                f'The input {name!r} must name a node and its input: ["6", "text"].'
            )
        node_id, input_name = str(target[0]), str(target[1])
        node = graph.get(node_id)
        if not isinstance(node, dict):
            raise InvalidRequest(
                f"The input {name!r} names node {node_id[:50]!r}, not in the graph."
            )
        kind = NODES[node["class_type"]]  # the graph is validated already
        spec = kind.input(input_name)
        if spec is None:
            names = ", ".join(i.name for i in kind.inputs if i.type not in LINKED)
            raise InvalidRequest(
                f"The input {name!r}: {kind.name} (node {node_id}) has no input "
                f"{input_name[:70]!r}; its value inputs are: {names or 'none'}."
            )
        if spec.type in LINKED or isinstance(node.get("inputs", {}).get(input_name), list):
            raise InvalidRequest(
                f"The input {name!r}: {input_name!r} of node {node_id} is a link from another "
                "node, not a value; expose a value input."
            )
        checked[name] = [node_id, input_name]
    return checked


def apply_inputs(graph: dict, exposed: dict[str, list[str]], given) -> dict:
    """A copy of ``graph`` with the given values set where the exposed inputs point. The
    values are checked by the graph's own validation when it is queued."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise InvalidRequest('inputs must be an object of values: {"prompt": "a lighthouse"}.')
    unknown = sorted(set(given) - set(exposed))
    if unknown:
        listed = ", ".join(sorted(exposed)) or "none"
        raise InvalidRequest(
            f"This workflow has no input {unknown[0][:70]!r}; its inputs are: {listed}."
        )
    graph = copy.deepcopy(graph)
    for name, value in given.items():
        if isinstance(value, dict | list) or value is None:
            # a list would read as a link to another node's output
            raise InvalidRequest(f"The input {name!r} takes a number or a text, not {value!r:.40}.")
        node_id, input_name = exposed[name]
        graph[node_id].setdefault("inputs", {})[input_name] = value
    return graph


# ---- the table


def view(workflow: Workflow, owner: str, viewer: User, full: bool = True) -> dict:
    """A workflow as the API shows it; ``full``: with its graph (a list leaves it out)."""
    return {
        "id": workflow.id,
        "name": workflow.name,
        "description": workflow.description,
        "owner": owner,
        "mine": workflow.user_id == viewer.id,
        "published": workflow.published,
        "inputs": workflow.inputs,
        "defaults": {
            name: workflow.graph.get(node_id, {}).get("inputs", {}).get(input_name)
            for name, (node_id, input_name) in workflow.inputs.items()
        },
        "nodes": len(workflow.graph),
        "graph": workflow.graph if full else None,
        "created_at": workflow.created_at.isoformat(),
        "updated_at": workflow.updated_at.isoformat(),
    }


def create(
    studio: Studio, user: User, name, graph, inputs=None, description: str | None = ""
) -> Workflow:
    """Check and keep a workflow: ``GraphInvalid`` (ComfyUI's node errors) for a broken graph."""
    name = check_name(name)
    description = description or ""
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise InvalidRequest(f"A description is a text of at most {MAX_DESCRIPTION} characters.")
    if not isinstance(graph, dict):
        raise InvalidRequest("graph must be a ComfyUI API-format graph: a JSON object of nodes.")
    if len(json.dumps(graph)) > MAX_GRAPH_BYTES:
        raise TooLarge(f"The graph is larger than {MAX_GRAPH_BYTES // 1_000_000} MB.")
    plan_graph(studio, user.id, graph)  # refuses a broken graph, naming nodes and inputs
    exposed = check_inputs(graph, inputs)
    with studio.db.session() as session:
        mine = select(func.count()).select_from(Workflow).where(Workflow.user_id == user.id)
        if session.scalar(mine) >= MAX_PER_USER:
            raise Conflict(f"You have {MAX_PER_USER} workflows; delete one to save another.")
        taken = select(Workflow.id).where(Workflow.user_id == user.id, Workflow.name == name)
        if session.scalar(taken):
            raise Conflict(f"You have a workflow named {name!r}; delete it or choose another name.")
        workflow = Workflow(
            user_id=user.id, name=name, description=description, graph=graph, inputs=exposed
        )
        session.add(workflow)
        try:
            session.flush()
        except IntegrityError:  # saved under that name at the same moment
            raise Conflict(f"You have a workflow named {name!r}; choose another name.") from None
        session.expunge(workflow)
    return workflow


def visible(session: Session, user: User):
    """The workflows ``user`` sees: their own and the published ones, with owners' names."""
    query = (
        select(Workflow, User.username)
        .join(User, User.id == Workflow.user_id)
        .where(or_(Workflow.user_id == user.id, Workflow.published.is_(True)))
        .order_by(func.lower(Workflow.name), Workflow.created_at)
    )
    return session.execute(query).all()


def find(session: Session, user: User, name: str, owner: str | None = None) -> tuple[Workflow, str]:
    """The workflow ``name`` as ``user`` means it: their own, else the published one of that
    name; ``owner`` picks another user's (published, or any for an admin)."""
    query = select(Workflow, User.username).join(User, User.id == Workflow.user_id)
    query = query.where(Workflow.name == name)
    if owner is not None:
        query = query.where(func.lower(User.username) == owner.lower())
        if not user.is_admin:
            query = query.where(or_(Workflow.user_id == user.id, Workflow.published.is_(True)))
        found = session.execute(query).first()
    else:
        found = session.execute(query.where(Workflow.user_id == user.id)).first() or (
            session.execute(query.where(Workflow.published.is_(True))).first()
        )
    if found is None:
        raise NotFound(f"There is no workflow named {name[:70]!r} that you can see.")
    return found[0], found[1]


def delete(session: Session, user: User, name: str, owner: str | None = None) -> None:
    workflow, _ = find(session, user, name, owner)
    if workflow.user_id != user.id and not user.is_admin:
        raise Forbidden("This workflow is published by another user: only an admin may delete it.")
    session.delete(workflow)


def publish(
    session: Session, admin: User, name: str, owner: str | None, published: bool
) -> tuple[Workflow, str]:
    """Publish (or withdraw) a workflow; two published workflows never share a name, so that
    a name alone says which one a user runs."""
    workflow, owned_by = find(session, admin, name, owner)
    if published and not workflow.published:
        clash = select(Workflow.id).where(
            Workflow.name == workflow.name, Workflow.published.is_(True), Workflow.id != workflow.id
        )
        if session.scalar(clash):
            raise Conflict(
                f"Another published workflow is named {workflow.name!r}; withdraw it first."
            )
    workflow.published = published
    workflow.updated_at = utcnow()
    return workflow, owned_by


def run(studio: Studio, user: User, workflow: Workflow, given) -> Job:
    """Queue the workflow with ``given`` values for its exposed inputs: a job like any
    graph's, with its source ``workflow``."""
    graph = apply_inputs(workflow.graph, workflow.inputs, given)
    return submit_graph(studio, user, graph, source=SOURCE)
