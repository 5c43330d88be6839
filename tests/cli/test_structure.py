"""The shape of `auditor/cli/`, as the house rules state it: thin commands, no private names
borrowed from other modules, and one direction (the app knows the command modules; they
know only the shared modules, never the app or each other)."""

from __future__ import annotations

import ast
from pathlib import Path

CLI = Path(__file__).resolve().parents[2] / "auditor" / "cli"
LONGEST_BODY = 14  # lines, docstring excluded: every command body is under 15 lines


def modules() -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text(encoding="utf-8")) for p in sorted(CLI.glob("*.py"))}


def body_lines(function: ast.FunctionDef) -> int:
    """Lines from the first statement after the docstring to the end of the last."""
    body = function.body
    if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    if not body:
        return 0
    last = body[-1].end_lineno
    assert last is not None
    return last - body[0].lineno + 1


def is_command(function: ast.FunctionDef) -> bool:
    """Registered with `<typer>.command(...)`, as every command of the app is."""
    return any(
        isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr == "command"
        for d in function.decorator_list
    )


def commands() -> dict[str, int]:
    return {
        f"{name}.{node.name}": body_lines(node)
        for name, tree in modules().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and is_command(node)
    }


def imported(tree: ast.Module) -> list[tuple[str, str]]:
    """(module, name) of every `from auditor... import name`; (module, "") of `import`."""
    found: list[tuple[str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
    return [(m, n) for m, n in found if m == "auditor" or m.startswith("auditor.")]


def test_every_command_body_is_under_15_lines() -> None:
    found = commands()
    assert len(found) >= 21, sorted(found)  # every command of the app was seen
    long = {name: lines for name, lines in found.items() if lines > LONGEST_BODY}
    assert not long, f"command bodies of 15 lines or more (move the work to a helper): {long}"


def test_every_command_takes_the_context_as_ctx() -> None:
    """`handles_errors` reads --debug from it; the commands read every global option from it."""
    missing = [
        f"{name}.{node.name}"
        for name, tree in modules().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and is_command(node)
        and "ctx" not in [a.arg for a in node.args.args]
    ]
    assert not missing


def test_no_cli_module_imports_a_private_name() -> None:
    private = [
        f"{name}: from {module} import {what}"
        for name, tree in modules().items()
        for module, what in imported(tree)
        if what.startswith("_") and not what.endswith("__")  # __version__ is public
    ]
    assert not private


def command_modules() -> set[str]:
    """The modules that define `commands`, the typer app the root app merges."""
    return {
        name
        for name, tree in modules().items()
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "commands" for t in node.targets)
    }


def cli_imports(tree: ast.Module) -> set[str]:
    """The `auditor.cli` modules a module imports, by their short name."""
    names = set()
    for module, what in imported(tree):
        if module == "auditor.cli":
            names.add(what)
        elif module.startswith("auditor.cli."):
            names.add(module.removeprefix("auditor.cli.").split(".")[0])
    return names


def test_the_cli_has_one_direction() -> None:
    wiring = command_modules()
    assert {"scan", "collect", "report", "lint", "sim", "demo"} <= wiring
    for name, tree in modules().items():
        uses = cli_imports(tree)
        if name == "__init__":
            assert uses == {"app"}
        elif name == "app":
            assert wiring <= uses
        else:
            assert not uses & (wiring | {"app"}), f"{name} imports {uses & (wiring | {'app'})}"
