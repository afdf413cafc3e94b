"""What the server offers: its models (newest versions first), samplers, health, docs."""

import shutil

from sfumato.catalog.cards import Card, write_card


def test_models_show_the_newest_version_unless_all_are_asked_for(
    make_server, tiny_models, tmp_path
):
    models = tmp_path / "versioned"
    for version in ("9", "10"):
        folder = models / f"dreamy-v{version}"
        shutil.copytree(tiny_models["sd15"]["folder"], folder)
        write_card(folder, Card(lineage="dreamy", version=version, category="artistic"))
    server = make_server(models_dirs=[models])
    listed = server.get("/v1/models").json()["models"]
    dreamy = next(m for m in listed if m["lineage"] == "dreamy")
    assert dreamy["version"] == "10" and dreamy["versions"] == ["10", "9"]
    assert dreamy["functions"] == ["text2image", "image2image", "inpainting"]
    assert "path" not in dreamy  # the server's folders are its own business
    every = server.get("/v1/models", params={"all_versions": True}).json()["models"]
    assert [m["version"] for m in every if m["lineage"] == "dreamy"] == ["10", "9"]
    artistic = server.get("/v1/models", params={"category": "artistic"}).json()["models"]
    assert [m["lineage"] for m in artistic] == ["dreamy"]
    job = server.generate(model="dreamy@9", width=64, height=64, steps=2)
    assert job["status"] == "succeeded" and job["model"] == "dreamy-v9"


def test_samplers_health_and_the_api_docs(server):
    samplers = {s["id"]: s["name"] for s in server.get("/v1/samplers").json()["samplers"]}
    assert samplers["dpmpp_2m_karras"] == "DPM++ 2M Karras" and len(samplers) == 20
    health = server.client.get("/v1/health").json()
    assert health["status"] == "ok" and health["retention_days"] == 30
    spec = server.client.get("/openapi.json").json()
    for path in ("/v1/generations", "/v1/events", "/v1/images", "/text2image", "/info"):
        assert path in spec["paths"], path
    assert "swagger" in server.client.get("/docs").text.lower()
