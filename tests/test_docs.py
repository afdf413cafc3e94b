"""The README's promises that code can check."""

import re
from pathlib import Path

from typer.testing import CliRunner

from sfumato.cli import app
from sfumato.engine.samplers import SAMPLERS

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()


def _quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section, re.DOTALL)


def test_quick_start_is_two_commands_and_ci_runs_the_test_one():
    commands = _quick_start_commands()
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    install_and_run, install_and_test = commands
    assert "sfumato serve" in install_and_run
    assert install_and_test.endswith("pytest")
    assert install_and_test in (ROOT / ".ci" / "run").read_text()


def test_every_generate_option_is_documented_in_the_readme():
    help_text = CliRunner().invoke(app, ["generate", "--help"], terminal_width=200).output
    options = set(re.findall(r"(--[a-z][a-z-]+)", help_text)) - {"--help"}
    missing = [o for o in sorted(options) if o not in README]
    assert not missing, f"options missing from README.md: {missing}"


def test_every_sampler_is_named_in_the_readme():
    missing = [s.name for s in SAMPLERS if s.name not in README]
    assert not missing


def test_every_server_option_and_setting_is_documented_in_the_readme():
    from dataclasses import fields

    from sfumato.store.site import SiteSettings

    help_text = CliRunner().invoke(app, ["serve", "--help"], terminal_width=200).output
    options = set(re.findall(r"(--[a-z][a-z-]+)", help_text)) - {"--help"}
    settings = {f"`{f.name}`" for f in fields(SiteSettings)}
    missing = [x for x in sorted(options | settings) if x not in README]
    assert not missing, f"missing from README.md: {missing}"


def test_every_api_route_is_documented_in_the_readme(tmp_path):
    from sfumato.api.app import create_app
    from sfumato.studio import Studio, StudioConfig

    spec = create_app(Studio(StudioConfig(data_dir=tmp_path))).openapi()
    paths = {re.sub(r"\{\w+\}", "{id}", path) for path in spec["paths"]}
    missing = [p for p in sorted(paths) if p not in README]
    assert not missing, f"routes missing from README.md: {missing}"
