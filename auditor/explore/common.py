"""What every investigation command needs: the store, the analysis, names users can type."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from datetime import timedelta

from auditor.analyze import open_existing, resolve_environments
from auditor.checks.evidence import Evidence
from auditor.errors import UsageError
from auditor.frames import DEFAULT_WINDOW, Window, load_frames
from auditor.settings import Settings
from auditor.store import Store, StoreError


def require_scan(store: Store) -> int:
    """The latest scan id; a clear error for an empty store."""
    scan = store.latest_scan()
    if scan is None:
        raise StoreError(
            f"the store {store.path} holds no scan yet",
            hint="Run `auditor collect` (or `auditor scan`) first.",
        )
    return scan.scan_id


def load_evidence(
    settings: Settings,
    *,
    window: timedelta = DEFAULT_WINDOW,
    environments: Iterable[str] = (),
) -> Evidence:
    """The analysis of the latest scan's window (read-only), as `auditor analyze` sees it."""
    with open_existing(settings, read_only=True) as store:
        scan_id = require_scan(store)
        scan = store.scan(scan_id)
        env_ids = resolve_environments(store, list(environments))
        frames = load_frames(
            store, window=Window.last(window, scan.window_end), environments=env_ids
        )
    return Evidence(frames)


def unknown_name(kind: str, name: str, candidates: Iterable[str], command: str) -> UsageError:
    """`no flow 'Nightly exprot'; did you mean ...?` with the closest names."""
    pool = sorted({c for c in candidates if c})
    close = difflib.get_close_matches(name, pool, n=3, cutoff=0.5)
    if not close:
        lowered = name.lower()
        close = [c for c in pool if lowered in c.lower()][:3]
    return UsageError(
        f"no {kind} {name!r} in the store"
        + (f"; did you mean {', '.join(map(repr, close))}?" if close else ""),
        hint=f"`{command}` lists them.",
    )


__all__ = ["load_evidence", "require_scan", "unknown_name"]
