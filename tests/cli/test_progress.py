"""The collection's live display: drawn on a terminal, not in a log or a pipe (where it would
show nothing and cost the collection CPU ten times a second)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from auditor.cli import render_runs


@pytest.mark.parametrize("terminal", [True, False])
def test_the_collection_display_is_drawn_only_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, terminal: bool
) -> None:
    console = Console(file=io.StringIO(), force_terminal=terminal)
    monkeypatch.setattr(render_runs, "err", console)
    with render_runs.collect_progress() as progress:
        render_runs.CollectProgress(progress).rows("Contoso", "flowruns", 10)
        assert progress.live.is_started is terminal
