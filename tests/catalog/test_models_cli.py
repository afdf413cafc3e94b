"""`sfumato models ...` and `generate --model` as a user meets them, on a real models folder."""

import hashlib
import json
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

from sfumato.catalog.cards import read_card
from tests.catalog.conftest import kohya_lora
from tests.test_cli import FAST, run


def test_list_shows_newest_versions_and_json_has_the_details(models_root):
    result = run("models", "list", "--models-dir", str(models_root))
    assert result.exit_code == 0, result.output
    assert "juggernautXL@10" in result.output and "juggernautXL@9" not in result.output
    assert "--all-versions" in result.output
    rows = json.loads(run("models", "list", "--json", "--models-dir", str(models_root)).stdout)
    jugg = next(r for r in rows if r["lineage"] == "juggernautXL")
    assert jugg["versions"] == ["10", "9"] and jugg["family"] == "sdxl"
    assert jugg["defaults"]["width"] == 1024 and jugg["card_inferred"]
    every = run("models", "list", "--all-versions", "--family", "sdxl", "--json",
                "--models-dir", str(models_root))  # fmt: skip
    assert [r["version"] for r in json.loads(every.stdout)] == ["10", "9"]
    loras = json.loads(
        run("models", "list", "--kind", "loras", "--json", "--models-dir", str(models_root)).stdout
    )
    assert {r["name"]: r["family"] for r in loras}["xl_detail"] == "sdxl"


def test_show_gives_settings_versions_and_hashes(models_root):
    result = run("models", "show", "juggernaut@9", "--json", "--models-dir", str(models_root))
    row = json.loads(result.stdout)
    data = (models_root / "juggernautXL_v9.safetensors").read_bytes()
    assert row["sha256"] == hashlib.sha256(data).hexdigest()
    assert row["autov2"] == row["sha256"][:10]
    text = run("models", "show", "pixel", "--models-dir", str(models_root)).stdout
    assert "pixel art 40" in text and "LoRA hash (A1111)" in text


def test_a_wrong_name_lists_the_choices(models_root):
    result = run("models", "show", "nope", "--models-dir", str(models_root))
    assert result.exit_code == 1
    assert "No model named 'nope'. Installed: anime@5, dreamshaper@8" in result.output


def test_warnings_name_the_broken_card_and_keep_going(models_root):
    (models_root / "anime-5" / "sfumato.toml").write_text("version = = 5\n")
    result = run("models", "list", "--models-dir", str(models_root))
    assert result.exit_code == 0
    assert "anime-5/sfumato.toml cannot be read" in result.output and "line 1" in result.output
    assert "dreamshaper@8" in result.output


def test_add_copies_the_file_in_and_writes_an_editable_card(tiny_models, tmp_path):
    models = tmp_path / "models"
    source = tiny_models["sd15"]["single"]
    result = run("models", "add", str(source), "--category", "anime", "--version", "3",
                 "--lineage", "toon", "--models-dir", str(models))  # fmt: skip
    assert result.exit_code == 0, result.output
    added = models / source.name
    assert added.read_bytes() == source.read_bytes() and source.exists()
    card = read_card(added)
    assert (card.category, card.version, card.lineage, card.family) == (
        "anime",
        "3",
        "toon",
        "sd15",
    )
    assert not card.inferred
    assert "toon@3" in run("models", "list", "--models-dir", str(models)).stdout


def test_generate_by_lineage_and_version(models_root, tmp_path):
    out = tmp_path / "a.png"
    result = run("generate", "a cat", *FAST, "-m", "anime@4", "-o", str(out),
                 "--models-dir", str(models_root))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "anime-4" in result.output and out.is_file()
    several = run("generate", "a cat", *FAST, "--models-dir", str(models_root))
    assert several.exit_code == 1
    assert "Several models are installed; choose one with --model: anime@5" in several.output


def test_pull_puts_a_lora_in_lora_with_a_card(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    kohya_lora(served / "inkstyle_v1.safetensors", "sd15", {"ink": 9})
    digest = hashlib.sha256((served / "inkstyle_v1.safetensors").read_bytes()).hexdigest()
    handler = partial(SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_port}/inkstyle_v1.safetensors"
        models = tmp_path / "models"
        result = run("models", "pull", url, "--sha256", digest, "--models-dir", str(models))
        assert result.exit_code == 0, result.output
        path = models / "Lora" / "inkstyle_v1.safetensors"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
        card = read_card(path)
        assert card.source_url == url and card.family == "sd15" and card.keywords == {"ink": 9}
        again = run("models", "pull", url, "--models-dir", str(models), "--name", "x.safetensors",
                    "--sha256", "f" * 64)  # fmt: skip
        assert again.exit_code == 1 and "not the file the source describes" in again.output
        assert not (models / "x.safetensors").exists()
    finally:
        httpd.shutdown()
