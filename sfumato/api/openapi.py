"""What the OpenAPI document says of bodies the routes parse by hand (a form or JSON)."""

from __future__ import annotations

from pydantic import BaseModel


def hand_parsed_body(model: type[BaseModel], files: tuple[str, ...] = ()) -> dict:
    """``openapi_extra`` for a body that is ``model`` as JSON or a urlencoded form; with
    ``files``, also multipart, those fields sent as files.

    Nested models are referred to among the document's components, where the routes that
    take them as JSON put them.
    """
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    content = {
        "application/json": {"schema": schema},
        "application/x-www-form-urlencoded": {"schema": schema},
    }
    if files:
        binary = {name: {"type": "string", "format": "binary"} for name in files}
        content["multipart/form-data"] = {
            "schema": schema | {"properties": schema["properties"] | binary}
        }
    return {"requestBody": {"required": True, "content": content}}
