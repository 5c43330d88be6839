"""The design lives in the repository: nothing points at a document a clone does not have.

A contributor who clones the project sees `docs/`, the code and Microsoft's pages, nothing
else. So no file may send a reader to a design or style note kept outside the repository, to
a folder beside it, or to an issue number of the tracker the project was built in: each
reference says what it meant, or links the `docs/` page or the Microsoft Learn page it stands
for. And the design pages' own links lead to files and headings that exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve()
REPO = HERE.parents[1]

# What a clone does not have. This file names them to test the pattern, so it is not scanned.
OUTSIDE = re.compile(
    r"design\.md|style\.md|shared/|reference/[\w.-]+\.md|\bissues? +#?\d+",
    re.IGNORECASE,
)

SCANNED = ("auditor", "tests", "bench", "docs", "reports", "queries", ".ci")
SCANNED_FILES = ("README.md",)

# Being cleaned: files (and, ending in "/", folders) that other refactorings are moving or
# rewriting; their references are replaced once those land. Remove each entry as it is
# cleaned: the list ends empty. An entry that does not exist (yet, or any more) is ignored.
BEING_CLEANED: tuple[str, ...] = ()


def _being_cleaned(name: str) -> bool:
    return any(
        name == entry or (entry.endswith("/") and name.startswith(entry)) for entry in BEING_CLEANED
    )


def _files() -> Iterator[Path]:
    """Every file of the scanned folders, but caches, virtual environments and this file."""
    for name in SCANNED_FILES:
        if (REPO / name).is_file():
            yield REPO / name
    for folder in SCANNED:
        for path in sorted((REPO / folder).rglob("*")):
            parts = path.relative_to(REPO).parts
            hidden = any(part.startswith(".") and part != ".ci" for part in parts)
            if path.is_file() and not hidden and "__pycache__" not in parts and path != HERE:
                yield path


def _text(path: Path) -> str | None:
    """The file as UTF-8 text; None for binary files (stores, UTF-16 exports)."""
    data = path.read_bytes()
    if b"\0" in data:
        return None
    return data.decode("utf-8", errors="replace")


def _references() -> dict[str, list[str]]:
    """file -> its `file:line: text` lines that point outside the repository."""
    found: dict[str, list[str]] = {}
    for path in _files():
        text = _text(path)
        if text is None or not OUTSIDE.search(text):
            continue
        name = path.relative_to(REPO).as_posix()
        for number, line in enumerate(text.splitlines(), start=1):
            if OUTSIDE.search(line):
                found.setdefault(name, []).append(f"{name}:{number}: {line.strip()}")
    return found


def test_nothing_points_outside_the_repository() -> None:
    offending = [
        line
        for name, lines in sorted(_references().items())
        if not _being_cleaned(name)
        for line in lines
    ]
    assert not offending, (
        "these lines point at documents a clone does not have (design.md, style.md, "
        "reference notes, a folder beside the repository, an issue number); link the docs/ "
        "page or the Microsoft Learn page instead, or say what the issue asked for:\n"
        + "\n".join(offending)
    )


def test_the_being_cleaned_list_holds_only_files_still_to_clean() -> None:
    found = _references()
    stale = [
        entry
        for entry in BEING_CLEANED
        if (REPO / entry).exists()
        and not any(name == entry or name.startswith(entry.rstrip("/") + "/") for name in found)
    ]
    assert not stale, (
        "these no longer point outside the repository: remove them from BEING_CLEANED in "
        "tests/test_house_rules.py:\n" + "\n".join(stale)
    )


def test_the_pattern_catches_what_it_is_meant_to() -> None:
    for text in (
        "as design.md section 7 says",
        "see Style.md rule 10",
        "the schema in ../shared/schemas",
        "(reference/dataverse-plugins.md 4.3)",
        "Reports (issue 6) read them back",
        "Issue 12 asks for it",
    ):
        assert OUTSIDE.search(text), text
    for text in (
        "docs/architecture.md#quality-bars",
        "shared_commondataserviceforapps",
        "https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/flowrun",
        "an issue with 3 flows",
    ):
        assert not OUTSIDE.search(text), text


LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_the_design_pages_link_only_to_what_exists() -> None:
    pages = [
        REPO / "README.md",
        REPO / "bench" / "README.md",
        *sorted((REPO / "docs").glob("*.md")),
    ]
    broken = []
    for page in pages:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.relative_to(REPO)}: {target} (no such file)")
            elif anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", linked.read_text(encoding="utf-8"), re.M)
                if anchor not in {_anchor(h) for h in headings}:
                    broken.append(f"{page.relative_to(REPO)}: {target} (no such heading)")
    assert not broken, "links to nothing:\n" + "\n".join(broken)
