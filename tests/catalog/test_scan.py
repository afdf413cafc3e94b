import hashlib
import shutil
import struct

import pytest

from sfumato.catalog.hashes import HashCache
from sfumato.catalog.loras import check_lora_fits
from sfumato.catalog.scan import CHECKPOINT, LORA, Catalog
from sfumato.errors import ModelNotFound, UnsupportedModel


def names(entries):
    return [e.display for e in entries]


def test_lists_show_the_newest_version_of_each_lineage(models_root):
    catalog = Catalog.scan([models_root])
    assert catalog.problems == []
    assert names(catalog.listing()) == [
        "anime@5",
        "dreamshaper@8",
        "juggernautXL@10",
        "sfumato-demo@1",  # the bundled demo model is listed like any other, last
    ]
    assert names(catalog.listing(all_versions=True)) == [
        "anime@5",
        "anime@4",
        "dreamshaper@8",
        "dreamshaper@7",
        "juggernautXL@10",
        "juggernautXL@9",
        "sfumato-demo@1",
    ]
    assert names(catalog.listing(family="sdxl")) == ["juggernautXL@10"]
    assert names(catalog.listing(category="demo")) == ["sfumato-demo@1"]


def test_files_without_a_card_get_an_inferred_one(models_root):
    catalog = Catalog.scan([models_root])
    entry = catalog.resolve("juggernautXL_v9")
    assert entry.card.inferred
    assert (entry.lineage, entry.version, entry.family) == ("juggernautXL", "9", "sdxl")
    demo = catalog.resolve("sfumato-demo")
    assert not demo.card.inferred and demo.card.category == "demo" and demo.bundled


def test_names_resolve_to_the_newest_a_version_or_a_file(models_root):
    catalog = Catalog.scan([models_root])
    path = lambda query: catalog.resolve(query).path.name  # noqa: E731
    assert path("juggernaut") == "juggernautXL_v10.safetensors"  # a unique beginning
    assert path("juggernautxl") == "juggernautXL_v10.safetensors"
    assert path("juggernaut@9") == "juggernautXL_v9.safetensors"
    assert path("JuggernautXL@v9") == "juggernautXL_v9.safetensors"
    assert path("juggernautXL_v9") == "juggernautXL_v9.safetensors"  # a file's own name
    assert path("anime") == "anime-5"
    assert path("anime@4") == "anime-4"
    with pytest.raises(ModelNotFound, match=r"juggernautXL has no version 11\. Versions: 10, 9"):
        catalog.resolve("juggernaut@11")
    with pytest.raises(ModelNotFound, match="No model named 'nothing'. Installed: anime@5, "):
        catalog.resolve("nothing")


def test_an_ambiguous_name_lists_the_candidates(models_root, tiny_models):
    shutil.copy(tiny_models["sd15"]["single"], models_root / "juggernaut_reborn.safetensors")
    catalog = Catalog.scan([models_root])
    with pytest.raises(ModelNotFound, match="could mean several models: ") as error:
        catalog.resolve("jugg")
    assert "juggernautXL@10" in error.value.message and "juggernaut_reborn" in error.value.message
    assert catalog.resolve("juggernaut_reborn").family == "sd15"


def test_a_card_names_the_model_and_its_settings_override_the_family(models_root):
    (models_root / "anime-5" / "sfumato.toml").write_text(
        'name = "Anime Dream"\ncategory = "anime"\nlineage = "anime"\nversion = 5\n'
        'trigger_words = ["anime style"]\n[defaults]\nsteps = 21\nclip_skip = 2\n'
    )
    catalog = Catalog.scan([models_root])
    entry = catalog.resolve("anime dream")
    assert entry.path.name == "anime-5" and not entry.card.inferred
    assert entry.source.effective_defaults.steps == 21
    assert entry.source.effective_defaults.width == 512  # the rest from the family
    assert entry.card.defaults["clip_skip"] == 2
    assert entry.card.trigger_words == ["anime style"]
    assert names(catalog.listing(category="anime")) == ["anime@5"]


def test_deprecated_and_hidden_versions(models_root):
    (models_root / "anime-5" / "sfumato.toml").write_text("deprecated = true\n")
    (models_root / "Stable-diffusion" / "dreamshaper_7.sfumato.toml").write_text("hidden = true\n")
    catalog = Catalog.scan([models_root])
    assert catalog.resolve("anime").path.name == "anime-4"  # never picked as the newest
    assert catalog.resolve("anime@5").path.name == "anime-5"  # still there when asked for
    assert "dreamshaper@7" not in names(catalog.listing())
    assert "dreamshaper@7" in names(catalog.listing(all_versions=True))


def test_a1111_and_comfyui_layouts_and_several_folders(tiny_models, tmp_path):
    a1111, comfy = tmp_path / "a1111" / "models", tmp_path / "ComfyUI" / "models"
    (a1111 / "Stable-diffusion" / "sorted").mkdir(parents=True)  # people sort into folders
    (comfy / "checkpoints").mkdir(parents=True)
    (comfy / "loras").mkdir()
    shutil.copy(
        tiny_models["sd15"]["single"], a1111 / "Stable-diffusion" / "sorted" / "a.safetensors"
    )
    shutil.copy(tiny_models["sdxl"]["single"], comfy / "checkpoints" / "b.safetensors")
    from tests.catalog.conftest import kohya_lora

    kohya_lora(comfy / "loras" / "c.safetensors", "sdxl")
    catalog = Catalog.scan([a1111, comfy], bundled=False)
    assert {e.name: e.kind for e in catalog.entries} == {
        "a": CHECKPOINT,
        "b": CHECKPOINT,
        "c": LORA,
    }


def test_broken_things_are_listed_with_the_reason_and_the_scan_goes_on(models_root, tmp_path):
    whole = (models_root / "juggernautXL_v10.safetensors").read_bytes()
    (models_root / "cut_v1.safetensors").write_bytes(whole[: len(whole) // 2])
    (models_root / "anime-4" / "sfumato.toml").write_text('name = "x"\n[defaults\nsteps = 3\n')
    catalog = Catalog.scan([models_root, tmp_path / "no-such-folder"])
    problems = "\n".join(catalog.problems)
    assert "no-such-folder does not exist" in problems
    assert "anime-4/sfumato.toml cannot be read" in problems and "line 2" in problems
    assert "cut_v1.safetensors cannot be used" in problems and "truncated" in problems
    cut = next(e for e in catalog.entries if e.path.name == "cut_v1.safetensors")
    assert "truncated" in cut.broken
    with pytest.raises(ModelNotFound, match="cannot be used") as refused:
        catalog.resolve("cut")
    assert str(models_root) not in refused.value.message  # a server does not show its disk
    assert catalog.resolve("anime@4").card.inferred  # the bad card is skipped, the model kept
    assert len(catalog.of_kind(CHECKPOINT)) == 8


def test_two_files_claiming_one_version_are_both_listed_with_a_warning(models_root):
    (models_root / "Stable-diffusion" / "dreamshaper_7.sfumato.toml").write_text("version = 8\n")
    catalog = Catalog.scan([models_root])
    assert any("both say they are dreamshaper version 8" in p for p in catalog.problems)
    assert names(catalog.listing(all_versions=True)).count("dreamshaper@8") == 2


def test_loras_in_the_catalog(models_root, tiny_models):
    catalog = Catalog.scan([models_root])
    loras = {e.name: e for e in catalog.of_kind(LORA)}
    assert {n: e.family for n, e in loras.items()} == {
        "peft-style": "sd15",
        "pixel_v2": "sd15",
        "xl_detail": "sdxl",
    }
    assert list(loras["pixel_v2"].card.keywords) == ["pixel art", "1girl"]
    assert catalog.resolve("pixel", LORA).path.name == "pixel_v2.safetensors"
    model = catalog.resolve("juggernaut")
    with pytest.raises(UnsupportedModel, match="made for SD 1.5 models"):
        check_lora_fits("pixel_v2", loras["pixel_v2"].lora, model.name, "sdxl")


def test_lookup_by_hash_matches_independent_sha256(models_root, tmp_path):
    catalog = Catalog.scan([models_root])
    hashes = HashCache(tmp_path / "hashes.json")
    model = models_root / "juggernautXL_v9.safetensors"
    autov2 = hashlib.sha256(model.read_bytes()).hexdigest()[:10]
    assert catalog.resolve(autov2, hashes=hashes).path == model
    lora = models_root / "Lora" / "pixel_v2.safetensors"
    data = lora.read_bytes()
    (header_length,) = struct.unpack("<Q", data[:8])
    a1111_hash = hashlib.sha256(data[8 + header_length :]).hexdigest()[:12]
    assert hashes.lora_hash(lora) == a1111_hash
    assert catalog.resolve(a1111_hash, LORA, hashes).path == lora


def test_default_model_is_the_only_one_installed_else_the_demo(models_root, tiny_models, tmp_path):
    assert Catalog.scan([tmp_path / "empty"]).default_checkpoint().bundled
    single = tmp_path / "one"
    single.mkdir()
    shutil.copy(tiny_models["sd15"]["single"], single / "mine.safetensors")
    assert Catalog.scan([single]).default_checkpoint().name == "mine"
    assert Catalog.scan([models_root]).default_checkpoint() is None  # several: the user picks


def test_a_card_can_bring_live_preview_factors_for_its_own_autoencoder(models_root):
    from sfumato.engine.preview import SD15, LatentPreview

    assert Catalog.scan([models_root]).resolve("anime@5").source.effective_preview == SD15
    (models_root / "anime-5" / "sfumato.toml").write_text(
        "[live_preview]\nlatent_rgb = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]]\n"
        "bias = [0.1, 0.2, 0.3]\n"
    )
    preview = Catalog.scan([models_root]).resolve("anime@5").source.effective_preview
    assert preview == LatentPreview(((1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 0, 0)), (0.1, 0.2, 0.3))
    (models_root / "anime-5" / "sfumato.toml").write_text("[live_preview]\nlatent_rgb = [[1]]\n")
    catalog = Catalog.scan([models_root])
    assert any("[live_preview] table sfumato cannot use" in p for p in catalog.problems)
