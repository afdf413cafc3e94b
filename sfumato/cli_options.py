"""The CLI's options for the generation parameters, made from the parameter table.

Typer reads a command's options from its signature; ``with_parameters`` adds one option per
row of ``engine.parameters.PARAMETERS`` to it, so a new parameter reaches ``sfumato generate``
(and its ``--help``) without another hand-written option.
"""

from __future__ import annotations

import functools
import inspect
from typing import Annotated

import typer

from sfumato.engine.parameters import PARAMETERS, Parameter

PANEL = "Settings (default: the model's)"


def _option(p: Parameter) -> inspect.Parameter:
    return inspect.Parameter(
        p.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            p.kind | None,
            typer.Option(*p.flags, help=p.help, show_default=False, rich_help_panel=PANEL),
        ],
    )


def with_parameters(command):
    """``command`` with an option per generation parameter; it receives their values (None
    where left out) as one dict, its ``parameters`` argument."""
    signature = inspect.signature(command, eval_str=True)
    own = [x for x in signature.parameters.values() if x.name != "parameters"]

    @functools.wraps(command)
    def wrapper(**values):
        parameters = {p.name: values.pop(p.name) for p in PARAMETERS}
        return command(**values, parameters=parameters)

    wrapper.__signature__ = signature.replace(parameters=own + [_option(p) for p in PARAMETERS])
    return wrapper
