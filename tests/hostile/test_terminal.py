"""Tenant text never drives the operator's terminal (item 3 of the hostile-input review).

A maker chooses flow, step and environment names; the APIs echo them into errors. Printed
raw, an ESC sequence can clear or retitle the terminal and draw fake output, and a bidi
override (CVE-2021-42574) reorders what is read. The hostile tenant of the reliability suite
(markup, formulas, escapes, bidi overrides in names, messages and definitions), with the
environment renamed to a terminal attack and one table denied so `collect` prints its
warning, is served here; every command that prints tenant text runs in a bounded subprocess
and its whole output, stdout and stderr, must be free of escape sequences and hiding
characters, while the name itself still shows, cleaned.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from auditor.sim.model import SimOptions
from auditor.sim.scenario import generate
from auditor.sim.server import SimServer
from tests.hostile.harness import Ran, clean_environment, run_auditor
from tests.reliability.hostile_tenant import CASES, TARGET_SLUG, inject, render_actions, target

# Clears the screen, homes the cursor, retitles the window, and reverses the text after it.
ATTACK = "\x1b[2J\x1b[H\x1b]0;owned\x07Contoso \u202eProduction\u202c \x9b31m"
SHOWN = "Contoso Production"
# Everything that hides, reorders or drives: C0/C1 controls but tab, line feed and carriage
# return, and the bidirectional embeddings, overrides and isolates.
HIDING = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """The hostile tenant served in this process; its folder and the collector's environment."""
    folder = tmp_path_factory.mktemp("terminal")
    tenant = generate(7, "tiny")
    inject(tenant, CASES)
    target(tenant).display_name = ATTACK
    options = SimOptions(seed=7, scale="tiny", deny=frozenset({(TARGET_SLUG, "plugintracelogs")}))
    with SimServer(tenant, options, render_actions=render_actions(CASES)) as server:
        server.write_client_files(folder)
        env = clean_environment(
            folder,
            {"AZURE_CLIENT_SECRET": tenant.client_secret, "SSL_CERT_FILE": str(folder / "ca.pem")},
        )
        yield folder, env


def _run(served: tuple[Path, dict[str, str]], *args: str) -> Ran:
    folder, env = served
    ran = run_auditor(
        ["--config", str(folder / "auditor.toml"), *args], cwd=folder, env=env, timeout=240
    )
    assert ran.code == 0, ran.stderr[-3000:]
    assert "Traceback" not in ran.stderr
    assert ran.peak_mb < 1000
    return ran


def _inert(ran: Ran) -> None:
    for stream in (ran.stdout, ran.stderr):
        assert HIDING.findall(stream) == [], stream[-2000:]


@pytest.fixture(scope="module")
def collected(served: tuple[Path, dict[str, str]]) -> Ran:
    return _run(served, "collect", "--all-environments", "--store", "s.duckdb")


def test_collect_prints_names_and_warnings_inert(collected: Ran) -> None:
    _inert(collected)
    assert SHOWN in collected.stdout  # the table names the environment, cleaned
    assert "warning:" in collected.stderr  # the denied table
    assert SHOWN in collected.stderr


def test_environments_prints_names_inert(served: tuple[Path, dict[str, str]]) -> None:
    for args in (["environments"], ["environments", "--json"]):
        ran = _run(served, *args)
        _inert(ran)
    assert SHOWN in _run(served, "environments").stdout


@pytest.mark.parametrize(
    "args",
    [
        ["analyze", "--store", "s.duckdb", "--worst", "50"],
        ["report", "--store", "s.duckdb", "--out", "out"],
        ["flows", "top", "--store", "s.duckdb", "--limit", "50"],
        ["history", "--store", "s.duckdb"],
        ["-v", "analyze", "--store", "s.duckdb"],
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_analysis_and_report_print_names_inert(
    served: tuple[Path, dict[str, str]], collected: Ran, args: list[str]
) -> None:
    ran = _run(served, *args)
    _inert(ran)
    assert ran.seconds < 120


def test_only_the_cleaner_escapes_for_the_terminal() -> None:
    """One way to the screen: a module that escaped tenant text for rich by itself could
    forget to clean it first."""
    package = Path(__file__).resolve().parents[2] / "auditor"
    escaping = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "rich.markup import escape" in path.read_text(encoding="utf-8")
    )
    assert escaping == ["terminal.py"]
