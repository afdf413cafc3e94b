import pytest

from sfumato.catalog.naming import infer_lineage, normalise, version_key


@pytest.mark.parametrize(
    ("name", "lineage", "version"),
    [
        ("juggernautXL_v10", "juggernautXL", "10"),
        ("juggernautXL_v9", "juggernautXL", "9"),
        ("dreamshaper_8", "dreamshaper", "8"),
        ("anime-5", "anime", "5"),
        ("anime 4", "anime", "4"),
        ("sd_xl_base_1.0", "sd_xl_base", "1.0"),
        ("juggernautV9", "juggernaut", "9"),
        ("model_v2-1", "model", "2.1"),
        ("dreamshaper_8_pruned_fp16", "dreamshaper", "8"),
        ("dreamshaper_8_inpainting", "dreamshaper-inpainting", "8"),
        # digits glued to a word are part of the name, not a version
        ("tiny-sd15", "tiny-sd15", None),
        ("sfumato-demo", "sfumato-demo", None),
        ("sdxl_lightning_4step", "sdxl_lightning", None),
    ],
)
def test_lineage_and_version_from_file_names(name, lineage, version):
    assert infer_lineage(name) == (lineage, version)


def test_versions_sort_as_people_count():
    labels = ["10", "9", "1.5", "2", "v60", "v51", "6b", "6"]
    assert sorted(labels, key=version_key) == ["1.5", "2", "6", "6b", "9", "10", "v51", "v60"]


def test_names_compare_without_case_or_separators():
    assert normalise("Juggernaut-XL") == normalise("juggernaut_xl") == "juggernautxl"
