"""The defaults of the verdict rules and the five answers the truth gives a verdict for.

Apart because the flow facts, the metrics and the verdicts all read them, and the analysis
checks use the same defaults (the package docstring is their specification).
"""

from __future__ import annotations

THRESHOLDS: dict[str, float] = {
    "min_runs": 20,
    "unnecessary_run_rate": 0.5,
    "missing_error_share": 0.2,
    "max_actions": 60,
    "max_depth": 5,
    "repeated_sequence_length": 5,
    "repeated_sequence_flows": 3,
    "failure_rate": 0.2,
    "failure_streak": 10,
    "exhausted_retry_runs": 5,
    "min_jobs": 20,
    "async_failure_rate": 0.2,
    "min_executions": 20,
    "sync_p95_ms": 2000,
    "near_timeout_ms": 108_000,
    "queue_latency_p95_ms": 600_000,
    "action_p95_ms": 600_000,
    "min_scans_30d": 3,
}

ANSWERS = (
    "trigger-conditions",
    "return-results",
    "decomposed-steps",
    "reliable-service",
    "sufficient-performance",
)
