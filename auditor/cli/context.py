"""The context every command runs in: what the global options chose.

The app's callback builds it once per run and hands it on as typer's `ctx.obj`; commands read
it with `cli_context(ctx)`. There is no module-global state, so two runs in one process (the
tests' `CliRunner`) never see each other's options.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from auditor.settings import Settings, load_settings


@dataclass(frozen=True)
class CliContext:
    """The global options of one run."""

    config: Path | None = None
    debug: bool = False
    quiet: bool = False

    def settings(self, **flags: Any) -> Settings:
        """The resolved settings: `--config` and the command's own flags over the file."""
        return load_settings({"config": self.config, **flags})


def cli_context(ctx: typer.Context) -> CliContext:
    """The context the app's callback built (the defaults when a command runs without it)."""
    found = ctx.find_object(CliContext)
    return found if found is not None else CliContext()
