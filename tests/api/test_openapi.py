"""The OpenAPI document describes every answer, not only the requests: a client generated from
it (or a person reading /docs) knows each route's fields."""

import pytest

from sfumato.api.app import create_app
from sfumato.api.routes.catalog import TEXT_FUNCTION
from sfumato.engine.families import FAMILIES
from sfumato.studio import Studio, StudioConfig

# answers that are not JSON: pictures, the event stream, and "done" without a body
NOT_JSON = {"image/png", "image/jpeg", "image/webp", "text/event-stream"}


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    return create_app(Studio(StudioConfig(data_dir=tmp_path_factory.mktemp("data")))).openapi()


def _operations(spec):
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            yield f"{method.upper()} {path}", operation


def test_every_v1_answer_has_a_named_schema(spec):
    untyped = []
    for name, operation in _operations(spec):
        if " /v1/" not in name:
            continue
        for status, answer in operation["responses"].items():
            if not status.startswith("2") or status == "204":
                continue
            for media, content in answer.get("content", {}).items():
                if media not in NOT_JSON and "$ref" not in content.get("schema", {}):
                    untyped.append(f"{name} {status} {media}")
    assert not untyped, f"answers without a schema: {untyped}"


def test_every_route_documents_the_error_body(spec):
    for name, operation in _operations(spec):
        if name == "GET /v1/events":  # FastAPI files its errors under the stream's media type
            continue
        error = operation["responses"].get("400", {}).get("content", {})
        # OpenAI's door answers in OpenAI's shape, so that its clients read it
        shape = "/OpenAIErrorBody" if " /openai/" in name else "/ErrorBody"
        assert error["application/json"]["schema"]["$ref"].endswith(shape), name


def test_links_in_answers_are_documented(spec):
    # the links are computed (built by the router), and the schema still says they are there
    image = spec["components"]["schemas"]["ImagePublic"]
    assert {"url", "thumbnail_url"} <= set(image["required"])
    assert "url" in spec["components"]["schemas"]["UploadPublic"]["required"]


def test_every_family_has_its_dezgo_route(spec):
    assert set(TEXT_FUNCTION) == set(FAMILIES)
    for function in TEXT_FUNCTION.values():
        assert f"/{function}" in spec["paths"]
