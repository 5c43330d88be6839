"""Global options before or after the command: `auditor scan --quiet --config x.toml` is
`auditor --quiet --config x.toml scan`, as Azure CLI, kubectl and gh accept them anywhere.

The root group moves the global options it finds after the command to the front before it
parses, keeping their order; an option given in both places is then given twice, and the
later one, after the command, wins. Everything after `--` is left where it is. No command
has an option or value spelt like a global option, so nothing else is moved.
"""

from __future__ import annotations

import re
from typing import Any

import typer
from typer.core import TyperGroup

FLAGS = frozenset({"--quiet", "--verbose", "--debug", "--version"})
WITH_VALUE = frozenset({"--config", "-c"})
_SHORT_FLAGS = re.compile(r"-[vq]+")  # -v, -vv, -q, -qv
NOTE = (
    "Global options (--config, --verbose, --quiet, --debug) go before or after the command; "
    "given in both places, the one after the command wins."
)


def hoist(args: list[str]) -> list[str]:
    """`args` with every global option (and the value of `--config`) moved to the front."""
    front: list[str] = []
    rest: list[str] = []
    k = 0
    while k < len(args):
        word = args[k]
        if word == "--":
            rest += args[k:]
            break
        if word in FLAGS or _SHORT_FLAGS.fullmatch(word):
            front.append(word)
        elif word in WITH_VALUE and k + 1 < len(args):
            front += args[k : k + 2]
            k += 1
        elif word.startswith("--config=") or (word.startswith("-c") and len(word) > 2):
            front.append(word)
        else:
            rest.append(word)
        k += 1
    return front + rest


class GlobalOptionsGroup(TyperGroup):
    """The root group: hoists the global options before it parses."""

    # `Any`: typer vendors click, and the Context type it uses has no public name.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist(args))


def note_in_help(commands: typer.Typer) -> None:
    """The note on global options at the foot of the help of every command in `commands`."""
    for command in commands.registered_commands:
        command.epilog = command.epilog or NOTE
    for group in commands.registered_groups:
        if group.typer_instance is not None:
            note_in_help(group.typer_instance)
