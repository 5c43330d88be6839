"""Where the data folders `queries/` and `reports/` are.

In the repository they sit at the top level; an installed wheel carries them inside the
package as `auditor/_data/<name>` (see `[tool.hatch.build.targets.wheel.force-include]`).
"""

from __future__ import annotations

from pathlib import Path

from auditor.errors import DefinitionError

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The folder `name` ("queries" or "reports"), installed copy first, then the checkout."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise DefinitionError(
        f"The data folder {name!r} is missing from the installation ({_PACKAGE}).",
        hint="Reinstall the auditor with `pip install .` from a complete checkout.",
    )
