"""MkDocs hooks for sfumato's documentation site (named in mkdocs.yml), all offline.

- The home page is the README itself, its links rewritten for the site (``docs/x.md`` is
  ``x.md`` here), so the front door is written once.
- ``benchmarks/RESULTS.md`` and its charts join the site as they are, so the docs link to the
  measured figures rather than copy them.
- The OpenAPI reference is made from the app itself at build time: ``openapi.json`` is
  written into the site, and the page's ``<!-- openapi-reference -->`` marker becomes a list
  of every route with its parameters, body and answers.
"""

from __future__ import annotations

import json
import re
import tempfile
from functools import cache
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).parents[2]
MARKER = "<!-- openapi-reference -->"


def on_files(files: Files, config) -> Files:
    results = ROOT / "benchmarks"
    for path in [results / "RESULTS.md", *sorted((results / "results").glob("*.png"))]:
        files.append(
            File(
                path.relative_to(ROOT).as_posix(),
                src_dir=str(ROOT),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
    files.append(File.generated(config, "openapi.json", content=json.dumps(_openapi(), indent=1)))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.src_uri == "index.md":
        return _readme_for_the_site()
    if page.file.src_uri.startswith("benchmarks/"):
        return markdown
    # pages link to the figures and the README as GitHub shows the repository; on the site
    # RESULTS.md is at benchmarks/ and the README is the home page
    markdown = markdown.replace("](../benchmarks/", "](benchmarks/")
    markdown = markdown.replace("](../README.md", "](index.md")
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, _reference(_openapi()))
    return markdown


def _readme_for_the_site() -> str:
    readme = (ROOT / "README.md").read_text()
    return re.sub(r"(\]\(|src=\")docs/", r"\1", readme)


@cache
def _openapi() -> dict:
    from sfumato.api.app import create_app
    from sfumato.studio import Studio, StudioConfig

    with tempfile.TemporaryDirectory() as data:
        return create_app(Studio(StudioConfig(data_dir=Path(data)))).openapi()


def _reference(spec: dict) -> str:
    by_tag: dict[str, list[str]] = {}
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            tag = (op.get("tags") or ["other"])[-1]
            by_tag.setdefault(tag, []).append(_operation(spec, method.upper(), path, op))
    out = []
    for tag, sections in by_tag.items():
        out.append(f"## {tag.capitalize()}\n")
        out.extend(sections)
    out.append("## Schemas\n")
    for name, schema in sorted(spec.get("components", {}).get("schemas", {}).items()):
        out.append(f"### {name}\n")
        if schema.get("description"):
            out.append(schema["description"].strip() + "\n")
        out.append(_fields(spec, schema))
    return "\n".join(out)


def _operation(spec: dict, method: str, path: str, op: dict) -> str:
    lines = [f"### `{method} {path}`\n", f"**{op.get('summary', '')}**\n"]
    if op.get("description"):
        lines.append(op["description"].strip() + "\n")
    params = op.get("parameters", [])
    if params:
        lines += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
        for p in params:
            lines.append(
                f"| `{p['name']}` | {p['in']} | {_type(spec, p.get('schema', {}))} | "
                f"{'yes' if p.get('required') else ''} | "
                f"{_cell(p.get('description') or p.get('schema', {}).get('description', ''))} |"
            )
        lines.append("")
    body = op.get("requestBody")
    if body:
        kinds = ", ".join(f"`{k}`" for k in body["content"])
        lines.append(f"Body ({kinds}):\n")
        schema = next(iter(body["content"].values())).get("schema", {})
        lines.append(_fields(spec, schema))
    answers = []
    for code, response in op.get("responses", {}).items():
        answer = f"{code} {_cell(response.get('description', ''))}"
        schema = response.get("content", {}).get("application/json", {}).get("schema", {})
        if "$ref" in schema or schema.get("type") == "array":
            answer += f" ({_type(spec, schema)})"
        answers.append(answer)
    lines.append(f"Answers: {', '.join(answers)}.\n")
    return "\n".join(lines)


def _fields(spec: dict, schema: dict) -> str:
    schema = _resolve(spec, schema)
    props = schema.get("properties")
    if not props:
        return f"{_type(spec, schema)}\n"
    required = set(schema.get("required", []))
    rows = ["| field | type | required | description |", "|---|---|---|---|"]
    for name, prop in props.items():
        rows.append(
            f"| `{name}` | {_type(spec, prop)} | {'yes' if name in required else ''} | "
            f"{_cell(prop.get('description', ''))} |"
        )
    return "\n".join(rows) + "\n"


def _resolve(spec: dict, schema: dict) -> dict:
    ref = schema.get("$ref")
    if ref:
        return spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return schema


def _type(spec: dict, schema: dict) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"  # its section under Schemas
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(_type(spec, s) for s in schema[key])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {_type(spec, schema.get('items', {}))}"
    if "enum" in schema:
        return " / ".join(f"`{v}`" for v in schema["enum"])
    return kind if schema.get("format") != "binary" else "file"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")
