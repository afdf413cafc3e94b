"""The docs' promises that code can check: the README's quick start is what CI runs, every
option, sampler, setting, route and environment variable is documented on its page, the
architecture page names every module, and the site builds offline with `mkdocs build
--strict`."""

import json
import os
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import typer

from sfumato.cli import app
from sfumato.engine.samplers import SAMPLERS

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"


def page(name: str) -> str:
    return (DOCS / name).read_text()


def all_docs() -> str:
    return "\n".join([README, *(p.read_text() for p in sorted(DOCS.glob("*.md")))])


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


def _commands() -> dict:
    """Every command by its full name ("generate", "models list", ...), as Typer's (click)
    command objects."""
    found = {}

    def walk(command, name: str) -> None:
        found[name] = command
        for sub_name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{name} {sub_name}".strip())

    walk(typer.main.get_command(app), "")
    return found


def _options(command) -> set[str]:
    names = {
        name
        for param in command.params
        if param.param_type_name == "option"
        for name in [*param.opts, *param.secondary_opts]
        if name.startswith("--")
    }
    return names - {"--help"}


def test_every_generate_option_is_on_the_cli_page():
    missing = sorted(o for o in _options(_commands()["generate"]) if o not in page("cli.md"))
    assert not missing, f"options missing from docs/cli.md: {missing}"


def test_every_sampler_is_named_on_the_cli_page():
    missing = [s.name for s in SAMPLERS if s.name not in page("cli.md")]
    assert not missing, f"samplers missing from docs/cli.md: {missing}"


def test_every_command_and_option_is_documented():
    docs = all_docs()
    missing = []
    for name, command in _commands().items():
        missing += [f"sfumato {name} {o}" for o in sorted(_options(command)) if o not in docs]
        if name:
            *group, last = name.split()
            # named as `sfumato models list`, or in a row such as `sfumato users add|list`
            if not re.search(rf"sfumato {' '.join(group)}\s*[^\n]*\b{re.escape(last)}\b", docs):
                missing.append(f"sfumato {name}")
    assert not missing, f"missing from README.md and docs/: {missing}"


def test_every_server_option_and_setting_is_documented():
    from sfumato.store.site import SiteSettings

    server = page("server.md")
    missing = [f"{o} (docs/server.md)" for o in sorted(_options(_commands()["serve"]))]
    missing = [m for m in missing if m.split()[0] not in server]
    configuration = page("configuration.md")
    missing += [
        f"`{f.name}` (docs/configuration.md)"
        for f in fields(SiteSettings)
        if f"`{f.name}`" not in configuration
    ]
    assert not missing, f"missing: {missing}"


PATH_PARAMETER = re.compile(r"\{\w+\}")


def _routes(tmp_path) -> list[str]:
    from sfumato.api.app import create_app
    from sfumato.studio import Studio, StudioConfig

    spec = create_app(Studio(StudioConfig(data_dir=tmp_path))).openapi()
    return [
        f"{method.upper()} {PATH_PARAMETER.sub('{id}', path)}"
        for path, operations in spec["paths"].items()
        for method in operations
    ]


def test_every_api_route_is_on_the_api_page(tmp_path):
    api = page("api.md")
    missing = [r for r in _routes(tmp_path) if f"`{r}`" not in api]
    assert not missing, f"routes missing from docs/api.md (as `METHOD /path/{{id}}`): {missing}"


def _environment_variables(folder: Path) -> set[str]:
    return {
        name
        for source in folder.rglob("*.py")
        for name in re.findall(r"\bSFUMATO_[A-Z0-9_]+\b", source.read_text())
    }


def test_every_environment_variable_is_on_the_configuration_page():
    configuration = page("configuration.md")
    read_by_sfumato = _environment_variables(ROOT / "sfumato")
    missing = sorted(v for v in read_by_sfumato if f"`{v}`" not in configuration)
    assert not missing, f"environment variables missing from docs/configuration.md: {missing}"
    development = page("development.md")
    read_by_tests = _environment_variables(ROOT / "tests") - read_by_sfumato
    missing = sorted(v for v in read_by_tests if v not in development)
    assert not missing, f"test environment variables missing from docs/development.md: {missing}"


def test_the_architecture_page_names_every_module_and_only_real_paths():
    architecture = page("architecture.md")
    package = ROOT / "sfumato"
    modules = [p for p in package.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    modules += [p for p in package.glob("*/*.py") if p.name != "__init__.py"]
    modules += [p.parent for p in package.glob("*/*/__init__.py")]  # api/routes/, ...
    names = [
        p.relative_to(ROOT).as_posix() + ("/" if p.is_dir() else "")
        for p in modules
        if "migrations" not in p.parts and "__pycache__" not in p.parts
    ]
    missing = sorted(n for n in names if n not in architecture)
    assert not missing, f"modules missing from docs/architecture.md: {missing}"
    named = set(re.findall(r"`(sfumato/[\w/.]*)`", architecture))
    gone = sorted(n for n in named if not (ROOT / n).exists())
    assert not gone, f"docs/architecture.md names paths that do not exist: {gone}"


# `mkdocs build` in a process of its own whose sockets all refuse to connect: nothing in the
# build (the theme, a plugin, the OpenAPI hook) may reach the network.
OFFLINE_BUILD = """
import socket, sys

def refuse(*args, **kwargs):
    raise OSError("the docs build tried to reach the network")

socket.socket.connect = socket.socket.connect_ex = refuse
socket.create_connection = socket.getaddrinfo = refuse
from mkdocs.__main__ import cli
cli.main(["build", "--strict", "--site-dir", sys.argv[1]], prog_name="mkdocs")
"""


def test_the_docs_site_builds_strict_and_offline(tmp_path):
    site = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-c", OFFLINE_BUILD, str(site)],
        cwd=ROOT,
        env=os.environ | {"NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    assert "Quick start" in (site / "index.html").read_text()  # the README is the home page
    assert (site / "benchmarks" / "RESULTS" / "index.html").exists()
    openapi = json.loads((site / "openapi.json").read_text())
    reference = (site / "api-reference" / "index.html").read_text()
    missing = [path for path in openapi["paths"] if path not in reference]
    assert not missing, f"routes missing from the built OpenAPI reference: {missing}"
