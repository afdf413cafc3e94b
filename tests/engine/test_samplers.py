import pytest

from sfumato.engine.samplers import SAMPLERS, get_sampler
from sfumato.errors import InvalidRequest

# The names the issue lists, as users type them
A1111_NAMES = [
    "Euler",
    "Euler a",
    "Heun",
    "DPM2",
    "DPM2 a",
    "DPM++ 2M",
    "DPM++ 2M Karras",
    "DPM++ SDE",
    "DPM++ SDE Karras",
    "DPM++ 2M SDE",
    "DPM++ 2M SDE Karras",
    "DDIM",
    "LMS",
    "LMS Karras",
    "PNDM",
    "UniPC",
    "LCM",
]


@pytest.mark.parametrize("name", A1111_NAMES)
def test_a1111_names_resolve_to_themselves(name):
    assert get_sampler(name).name == name


@pytest.mark.parametrize(
    "typed, expected",
    [
        ("euler_a", "Euler a"),
        ("dpmpp_2m_karras", "DPM++ 2M Karras"),
        ("k_lms", "LMS"),
        ("ddim", "DDIM"),
        ("dpm_2_a", "DPM2 a"),
        ("DPMPP 2M sde karras", "DPM++ 2M SDE Karras"),
        ("  euler A ", "Euler a"),
        ("k_euler_ancestral", "Euler a"),
        ("plms", "PNDM"),
        ("dpmpp_sde", "DPM++ SDE"),
        ("unipc", "UniPC"),
        ("lms_karras", "LMS Karras"),
    ],
)
def test_snake_case_ids_and_loose_spellings(typed, expected):
    assert get_sampler(typed).name == expected


def test_unknown_sampler_lists_the_choices():
    with pytest.raises(InvalidRequest) as e:
        get_sampler("euler b")
    assert "euler b" in e.value.message and "DPM++ 2M Karras" in e.value.message


def test_karras_and_sde_options_reach_the_scheduler():
    base = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012}
    s = get_sampler("DPM++ 2M SDE Karras").make_scheduler(base)
    assert type(s).__name__ == "DPMSolverMultistepScheduler"
    assert s.config.use_karras_sigmas and s.config.algorithm_type == "sde-dpmsolver++"
    assert get_sampler("lcm").make_scheduler(base).config.beta_schedule == "scaled_linear"
    trailing = get_sampler("euler").make_scheduler(base, {"timestep_spacing": "trailing"})
    assert trailing.config.timestep_spacing == "trailing"


def test_ids_and_aliases_are_unique():
    names = [n.lower() for s in SAMPLERS for n in (s.id, *s.aliases)]
    assert len(names) == len(set(names))
