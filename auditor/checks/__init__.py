"""The check catalog and the one way to run it (docs/adding-a-check.md).

`REGISTRY` lists every check module, in report order, each with the answers it decides as
`reports/assessment.toml` maps them (the one place that mapping is stated: see
`answer_checks`). `run_checks` runs them all on one `Evidence`, with each check's thresholds
resolved from the settings. Two rules hold for every check, whatever its code does:

- a check that raises costs that check, not the analysis: it becomes one `error` finding;
- coverage first: in an environment where a source the check needs was not collected (or
  trace logging hides it), its `pass` findings are replaced by one `not-assessed` finding
  that says what is missing and how to fix it. No data is never a pass. Its `fail` findings
  stay: a violation seen in partial data is still a violation.
"""

from __future__ import annotations

import difflib
import logging
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from types import ModuleType
from typing import Any

from auditor.checks import (
    coverage_flow_run_ingestion,
    coverage_flow_trigger_jobs,
    coverage_flows_outside_solutions,
    coverage_query_not_collected,
    coverage_scan_history,
    coverage_trace_executions,
    coverage_trace_failures,
    failures_without_detail,
    flow_action_slow,
    flow_definition_unreadable,
    flow_event_trigger_no_condition,
    flow_failure_rate,
    flow_handled_failure_succeeds,
    flow_invoked_no_response,
    flow_monolithic,
    flow_no_error_handling,
    flow_repeated_block,
    flow_retries_exhausted,
    flow_retry_none_unhandled,
    flow_sequential_loop,
    flow_unnecessary_runs,
    flow_update_trigger_unfiltered,
    flow_updates_own_trigger,
    near_platform_timeout,
    operation_continually_failing,
    plugin_sync_slow,
    plugin_update_unfiltered,
    queue_latency_high,
    system_jobs_failing,
    system_jobs_stuck,
    workflow_update_unfiltered,
)
from auditor.checks.base import ANSWERS, Check, CheckMeta, Finding, Limits, Scalar, make
from auditor.checks.evidence import Evidence
from auditor.errors import ConfigError, DefinitionError
from auditor.resources import data_dir
from auditor.settings import Settings

log = logging.getLogger(__name__)

_MODULES: tuple[ModuleType, ...] = (
    # trigger-conditions
    plugin_update_unfiltered,
    flow_update_trigger_unfiltered,
    flow_event_trigger_no_condition,
    flow_updates_own_trigger,
    workflow_update_unfiltered,
    flow_unnecessary_runs,
    # return-results
    flow_invoked_no_response,
    flow_handled_failure_succeeds,
    failures_without_detail,
    # decomposed-steps
    flow_monolithic,
    flow_repeated_block,
    # reliable-service
    flow_failure_rate,
    operation_continually_failing,
    flow_retries_exhausted,
    flow_retry_none_unhandled,
    flow_no_error_handling,
    system_jobs_failing,
    system_jobs_stuck,
    # sufficient-performance
    plugin_sync_slow,
    near_platform_timeout,
    flow_action_slow,
    flow_sequential_loop,
    queue_latency_high,
    # coverage and readability
    flow_definition_unreadable,
    coverage_trace_executions,
    coverage_trace_failures,
    coverage_flow_run_ingestion,
    coverage_flow_trigger_jobs,
    coverage_query_not_collected,
    coverage_flows_outside_solutions,
    coverage_scan_history,
)


def answer_checks(
    document: Mapping[str, Any], label: str
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Each answer with the checks that decide it, in the file's order: the `checks` lists
    of the `[[answer]]` tables of `reports/assessment.toml` (parsed as `document`).

    Checked both ways, each problem a DefinitionError naming what is wrong: every answer is
    one of the question's, in order, and has a check; every check named is registered; every
    registered check decides some answer."""
    registered = [m.META.id for m in _MODULES]
    out = []
    for i, raw in enumerate(document.get("answer", [])):
        answer = raw.get("id") if isinstance(raw, Mapping) else None
        if answer not in ANSWERS:
            raise DefinitionError(
                f"{label}: answer[{i}] {answer!r} is not an answer of the question "
                f"(they are: {', '.join(ANSWERS)})"
            )
        checks = raw.get("checks", [])
        if not isinstance(checks, list) or not checks:
            raise DefinitionError(f"{label}: answer {answer!r} maps no check (`checks = [...]`)")
        unknown = [str(c) for c in checks if c not in registered]
        if unknown:
            raise DefinitionError(
                f"{label}: answer {answer!r} maps unknown check(s): {', '.join(unknown)}"
            )
        out.append((answer, tuple(checks)))
    if tuple(a for a, _ in out) != ANSWERS:
        raise DefinitionError(f"{label}: the answers must be, in order: {', '.join(ANSWERS)}")
    mapped = {c for _, checks in out for c in checks}
    unmapped = [c for c in registered if c not in mapped]
    if unmapped:
        raise DefinitionError(f"{label}: check(s) mapped to no answer: {', '.join(unmapped)}")
    return tuple(out)


def _registry() -> tuple[Check, ...]:
    """Every check module, each META given the answers the assessment maps it to."""
    path = data_dir("reports") / "assessment.toml"
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DefinitionError(f"{path} cannot be read: {exc}") from exc
    answers: dict[str, list[str]] = {}
    for answer, checks in answer_checks(document, str(path)):
        for check_id in checks:
            answers.setdefault(check_id, []).append(answer)
    return tuple(Check(replace(m.META, answers=tuple(answers[m.META.id])), m.run) for m in _MODULES)


REGISTRY: tuple[Check, ...] = _registry()
CHECKS: dict[str, Check] = {c.id: c for c in REGISTRY}
assert len(CHECKS) == len(REGISTRY), "duplicate check ids"


def limits_for(meta: CheckMeta, settings: Settings) -> dict[str, Scalar]:
    """The check's thresholds: `[checks.<id>]` values of the settings over the defaults."""
    configured = dict(settings.thresholds.get(meta.id, {}))
    label = str(settings.config_file or "auditor.toml")
    out: dict[str, Scalar] = {}
    for threshold in meta.thresholds:
        value = configured.pop(threshold.name, threshold.default)
        try:
            out[threshold.name] = threshold.coerce(value)
        except ValueError as exc:
            raise ConfigError(f"checks.{meta.id}.{threshold.name}", label, str(exc)) from None
    if configured:
        name = sorted(configured)[0]
        known = [t.name for t in meta.thresholds]
        raise ConfigError(
            f"checks.{meta.id}.{name}",
            label,
            "is not a threshold of this check"
            + (f" (it has: {', '.join(known)})" if known else " (it has none)"),
            hint="`auditor checks list` shows every check's thresholds and defaults.",
        )
    return out


def validate_thresholds(settings: Settings) -> None:
    """Refuses `[checks.<id>]` tables for unknown checks and unknown threshold names."""
    label = str(settings.config_file or "auditor.toml")
    for check_id in settings.thresholds:
        if check_id not in CHECKS:
            close = difflib.get_close_matches(check_id, list(CHECKS), n=1)
            raise ConfigError(
                f"checks.{check_id}",
                label,
                "is not a check id" + (f"; did you mean {close[0]}?" if close else ""),
                hint="`auditor checks list` shows the check ids.",
            )
    for check in REGISTRY:
        limits_for(check.meta, settings)


def _with_coverage(check: Check, found: list[Finding], evidence: Evidence) -> list[Finding]:
    meta = check.meta
    if not meta.needs:
        return found
    kept: list[Finding] = []
    blocked: dict[str, list[str]] = {}
    hints: dict[str, list[str]] = {}
    for env in evidence.environments["environment_id"]:
        gaps = evidence.gaps(str(env), meta.needs)
        if gaps:
            blocked[str(env)] = [g.reason for g in gaps]
            hints[str(env)] = list(dict.fromkeys(g.hint for g in gaps))
    for finding in found:
        if finding.environment_id in blocked and finding.status in ("pass", "not-assessed"):
            continue
        kept.append(finding)
    for env, reasons in blocked.items():
        kept.append(
            make(
                meta,
                "not-assessed",
                "not assessed: " + "; ".join(reasons),
                environment_id=env,
                resource_kind="environment",
                resource_id=env,
                resource_name=evidence.environment_name(env),
                values={"missing": reasons, "hints": hints[env]},
            )
        )
    return kept


def run_check(check: Check, evidence: Evidence, limits: Limits) -> list[Finding]:
    """One check's findings, coverage applied; a check that raises gives one error finding."""
    try:
        found = check.run(evidence, limits)
    except Exception as exc:
        log.exception("check %s failed", check.id)
        return [
            make(
                check.meta,
                "error",
                f"the check could not run: {type(exc).__name__}: {str(exc)[:300]}",
                resource_kind="check",
                resource_id=check.id,
                resource_name=check.meta.title,
            )
        ]
    return _with_coverage(check, found, evidence)


def run_checks(
    evidence: Evidence, settings: Settings, checks: Iterable[Check] = REGISTRY
) -> list[Finding]:
    """Every check's findings, in catalog order."""
    out: list[Finding] = []
    for check in checks:
        out.extend(run_check(check, evidence, limits_for(check.meta, settings)))
    return out


def select(ids: Sequence[str]) -> tuple[Check, ...]:
    """The checks with these ids, in catalog order; an unknown id is a usage error."""
    from auditor.errors import UsageError

    unknown = [i for i in ids if i not in CHECKS]
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(CHECKS), n=1)
        raise UsageError(
            f"unknown check id {unknown[0]!r}" + (f"; did you mean {close[0]}?" if close else ""),
            hint="`auditor checks list` shows the check ids.",
        )
    return tuple(c for c in REGISTRY if c.id in ids)


__all__ = [
    "CHECKS",
    "REGISTRY",
    "Check",
    "CheckMeta",
    "Evidence",
    "Finding",
    "answer_checks",
    "limits_for",
    "run_check",
    "run_checks",
    "select",
    "validate_thresholds",
]
