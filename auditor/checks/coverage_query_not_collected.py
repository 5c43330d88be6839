"""A query that was not collected (or only in part) leaves the checks that read it blind."""

from __future__ import annotations

from auditor.checks.base import CheckMeta, Finding, Limits, make, rows
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="coverage-query-not-collected",
    title="A query not collected",
    severity="medium",
    rationale=(
        "Every check reads one or more queries; when a query was denied, failed or was turned "
        "off, the resources it describes were not audited. Reporting them as passing would "
        "turn no data into a pass."
    ),
    remediation=(
        "Follow the hint of each query (grant the privilege, turn the API on, run the "
        "collection again), then scan again."
    ),
    learn_url="https://learn.microsoft.com/power-platform/admin/security-roles-privileges",
    needs=(),
    resource_kind="query",
    coverage=True,
)


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """One finding per environment and query: pass when its latest outcome is collected."""
    queries = evidence.frames.scan_queries.sort_values(["environment_id", "query_id"])
    out = []
    for row in rows(queries):
        collected = row.status == "collected"
        reason = row.reason if isinstance(row.reason, str) else None
        out.append(
            make(
                META,
                "pass" if collected else "not-assessed",
                f"{row.query_id}: {row.status}, {row.rows:,} rows"
                if collected
                else f"{row.query_id}: {row.status}" + (f": {reason}" if reason else ""),
                environment_id=row.environment_id,
                resource_id=f"{row.environment_id}/{row.query_id}",
                resource_name=f"{evidence.environment_name(row.environment_id)}: {row.query_id}",
                values={
                    "query": row.query_id,
                    "status": row.status,
                    "rows": row.rows,
                    "reason": reason,
                    "hint": row.hint,
                },
            )
        )
    return out
