"""The house's shape as tests: the layers import one way, and no module reaches into another's
private names.

The layer order is the import-linter contract in pyproject.toml (`lint-imports` checks the
same); this test runs it so that the README's test command holds it."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "auditor"

# Private names imported across modules today, each with why it is tolerated. Nothing may be
# added: make the name public in its module instead.
KNOWN_PRIVATE_IMPORTS: set[tuple[str, str, str]] = set()


def test_the_import_contracts_hold() -> None:
    """Layers import only downward and no package's modules import in a circle. In a child
    process: import-linter configures logging with `dictConfig`, which disables every logger
    that exists, and the tests after this one would see no log record."""
    lint_imports = Path(sys.executable).parent / "lint-imports"
    ran = subprocess.run(
        [str(lint_imports), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "Contracts: 2 kept, 0 broken." in ran.stdout, ran.stdout


def _absolute(module: str | None, level: int, path: Path) -> str:
    """The module an `ImportFrom` names, relative imports resolved against `path`."""
    if not level:
        return module or ""
    package = list(path.relative_to(ROOT).with_suffix("").parts)[:-1]  # a.py's or __init__'s
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, module] if module else base)


def private_imports() -> set[tuple[str, str, str]]:
    """(file, module, name) of every `from auditor... import _name` inside auditor/."""
    found = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            module = _absolute(node.module, node.level, path)
            if module != "auditor" and not module.startswith("auditor."):
                continue
            for alias in node.names:
                name = alias.name
                if name.startswith("_") and not (name.startswith("__") and name.endswith("__")):
                    found.add((path.relative_to(ROOT).as_posix(), module, name))
    return found


def test_no_module_imports_another_modules_private_names() -> None:
    """A name starting with `_` is its module's own: needed elsewhere, it is made public."""
    new = sorted(private_imports() - KNOWN_PRIVATE_IMPORTS)
    assert not new, "private names imported from another module (make them public):\n" + "\n".join(
        f"  {file}: from {module} import {name}" for file, module, name in new
    )


def test_every_module_of_the_package_is_in_a_layer() -> None:
    """A module left out of the contract would be held to nothing: each top-level module or
    package of auditor is named in one layer."""

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (layers,) = [
        c["layers"] for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"
    ]
    named = {name.strip(" ()") for layer in layers for name in layer.replace("|", ":").split(":")}
    modules = {
        p.stem if p.is_file() else p.name
        for p in PACKAGE.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()
    }
    missing = sorted(modules - named)
    assert not missing, f"add these modules to a layer in pyproject.toml: {', '.join(missing)}"
