"""The `auditor` command line: options -> Settings -> library call -> renderer -> exit code.

`app` is the typer app (tests drive it with `CliRunner`); `main` is the console script.
"""

from __future__ import annotations

from auditor.cli.app import app, main

__all__ = ["app", "main"]
