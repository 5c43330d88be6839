"""`report.sarif`: the report model as SARIF 2.1.0, for code-scanning dashboards.

SARIF is the OASIS format static analysers share results in
(https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html); GitHub code scanning and
Azure DevOps read it. One run: the driver lists every check of the catalog as a rule, and
each failing (or erroring) finding is a result located logically at "environment/resource",
since a tenant has no source files. Muted findings stay, with an external suppression, so a
dashboard shows them as dismissed rather than losing them (SARIF 3.35). Findings that could
not be assessed are not violations, so they are not results; they are carried as warning
notifications of the invocation (SARIF 3.58), as every report carries what it could not see.
A rule has at most `MAX_RESULTS_PER_RULE` results; how many more there were is a note of the
invocation and `resultsLeftOut` in the run's properties. Code scanning rejects a run of more
than 25,000 results or a file over 10 MB (https://docs.github.com/code-security/code-scanning/troubleshooting-sarif-uploads/results-exceed-limit).

Each result has a partial fingerprint hashed from its check, environment and resource ids:
names change, ids do not, and code scanning matches results across uploads by it
(https://docs.github.com/code-security/code-scanning/integrating-with-code-scanning/sarif-support-for-code-scanning#providing-data-to-track-code-scanning-alerts-across-runs).
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from auditor.checks import REGISTRY
from auditor.checks.base import CheckMeta
from auditor.report.document import Location, Report, ReportFinding, Scan

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
FINGERPRINT = "auditorFinding/v1"  # bump the suffix if the hashed fields ever change
# A result's level from the check's severity (SARIF 3.27.10: error / warning / note).
LEVELS = {"high": "error", "medium": "warning", "low": "note"}
RESULT_STATUSES = ("fail", "error")
MAX_TEXT = 1000
# Results per rule, as the report model keeps findings per check and status: the ones left
# out are counted in the run's properties and in a note of the invocation.
MAX_RESULTS_PER_RULE = 1_000

# Control characters and lone surrogates (which no UTF-8 file can hold) are dropped; line
# breaks become spaces, so a message stays one line in every viewer.
_BREAKS = re.compile(r"[\t\n\r\v\f\x85\u2028\u2029]+")
_INVISIBLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_LINK_SYNTAX = re.compile(r"([\\\[\]])")


def plain(value: object, limit: int = MAX_TEXT) -> str:
    """A tenant text as one clean line of at most `limit` characters."""
    text = _INVISIBLE.sub("", _BREAKS.sub(" ", "" if value is None else str(value))).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def scrub(value: Any) -> Any:
    """JSON-ready data with every text `plain`: measured values carry tenant text too."""
    if isinstance(value, str):
        return plain(value)
    if isinstance(value, Mapping):
        return {plain(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def fingerprint(finding: ReportFinding) -> str:
    """A stable hash of what a finding is about: check, environment and resource ids."""
    resource = finding.resource_id or finding.resource_name or ""
    key = "\x1f".join((finding.check_id, finding.environment_id or "", resource))
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def level(finding: ReportFinding) -> str:
    """`error` for a check that could not run, else the level of the finding's severity."""
    if finding.status == "error":
        return "error"
    return LEVELS.get(finding.severity, "warning")


def rule(meta: CheckMeta) -> dict[str, Any]:
    """A check as a SARIF reportingDescriptor (SARIF 3.49)."""
    return {
        "id": meta.id,
        "name": "".join(part.capitalize() for part in meta.id.split("-")),
        "shortDescription": {"text": meta.title},
        "fullDescription": {"text": meta.rationale},
        "help": {
            "text": f"{meta.remediation} See {meta.learn_url}",
            "markdown": f"{meta.remediation}\n\n[Microsoft Learn]({meta.learn_url})",
        },
        "helpUri": meta.learn_url,
        "defaultConfiguration": {"level": LEVELS[meta.severity]},
        "properties": {
            "answers": list(meta.answers),
            "severity": meta.severity,
            "tags": ["reliability", *meta.answers],
            "thresholds": {t.name: t.default for t in meta.thresholds},
        },
    }


def physical(place: Location) -> dict[str, Any]:
    """A file location (lint): the file as given and the line, so that code-scanning views
    show the result on the trigger, action or step (SARIF 3.28, 3.4, 3.30). A record inside a
    zip points at the zip; the member is named in the location's message."""
    found: dict[str, Any] = {"artifactLocation": {"uri": _uri(place.file)}}
    if place.line:
        found["region"] = {"startLine": place.line}
    return found


def _uri(path: str) -> str:
    """A relative URI reference for a path as given (RFC 3986: `/` separated, %-escaped)."""
    return urllib.parse.quote(path.replace("\\", "/"), safe="/:@!$&'()*+,;=-._~")


def location(finding: ReportFinding, names: Mapping[str, str]) -> dict[str, Any]:
    """Where a finding is: its file and line when it came from a file (lint), and always its
    resource inside its environment, as a logical location."""
    env_id = finding.environment_id
    env = plain(finding.environment or names.get(str(env_id)) or env_id or "tenant")
    name = plain(finding.resource_name or finding.resource_id or "(unnamed)")
    place = finding.location
    extra: dict[str, Any] = {}
    if place is not None and place.file:
        extra["physicalLocation"] = physical(place)
        if place.member:
            extra["message"] = {"text": message_text(f"in {place.member}")}
    return {
        **extra,
        "logicalLocations": [
            {
                "name": name,
                "fullyQualifiedName": f"{env}/{name}",
                "kind": plain(finding.resource_kind or "resource"),
                "properties": {
                    "environmentId": env_id,
                    "environment": env,
                    "resourceId": finding.resource_id,
                },
            }
        ],
    }


def message_text(value: object) -> str:
    """A tenant text for a plain-text SARIF message: `plain`, with `\\`, `[` and `]`
    escaped, so `[text](target)` in a name never becomes an embedded link (SARIF 3.11.6)."""
    return _LINK_SYNTAX.sub(r"\\\1", plain(value))


def _message(finding: ReportFinding, names: Mapping[str, str]) -> dict[str, str]:
    where = location(finding, names)["logicalLocations"][0]["fullyQualifiedName"]
    parts = (finding.title or finding.check_id, where, finding.message)
    return {"text": ": ".join(message_text(part) for part in parts)}


def result(
    finding: ReportFinding, index: Mapping[str, int], names: Mapping[str, str]
) -> dict[str, Any]:
    """A failing or erroring finding as a SARIF result (SARIF 3.27)."""
    check_id = finding.check_id
    out: dict[str, Any] = {"ruleId": check_id}
    if check_id in index:
        out["ruleIndex"] = index[check_id]
    out |= {
        "level": level(finding),
        "message": _message(finding, names),
        "locations": [location(finding, names)],
        "partialFingerprints": {FINGERPRINT: fingerprint(finding)},
        "properties": {
            "status": finding.status,
            "severity": finding.severity,
            "answers": list(finding.answers),
            "values": scrub(finding.values),
            "learnUrl": finding.learn_url,
        },
    }
    if finding.suppressed:
        out["suppressions"] = [
            {
                "kind": "external",  # the mutelist, not the tenant, holds it
                "status": "accepted",
                "justification": plain(finding.suppression_reason or "muted"),
            }
        ]
    return out


def notification(
    finding: ReportFinding, index: Mapping[str, int], names: Mapping[str, str]
) -> dict[str, Any]:
    """A not-assessed finding as a warning of the run: what could not be seen, and where."""
    check_id = finding.check_id
    associated: dict[str, Any] = {"id": check_id}
    if check_id in index:
        associated["index"] = index[check_id]
    return {
        "level": "warning",
        "message": _message(finding, names),
        "locations": [location(finding, names)],
        "associatedRule": associated,
    }


def results(
    report: Report, index: Mapping[str, int], names: Mapping[str, str]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The results, at most `MAX_RESULTS_PER_RULE` per rule, and per rule how many were left
    out: here, or already by the report model (its `finding_counts`)."""
    out: list[dict[str, Any]] = []
    listed: dict[str, int] = {}
    cut: dict[str, int] = {}
    for count in report.finding_counts:
        if count.status in RESULT_STATUSES and count.left_out > 0:
            rule = count.check_id
            cut[rule] = cut.get(rule, 0) + count.left_out
    for finding in report.findings:
        if finding.status not in RESULT_STATUSES:
            continue
        rule = finding.check_id
        listed[rule] = listed.get(rule, 0) + 1
        if listed[rule] > MAX_RESULTS_PER_RULE:
            cut[rule] = cut.get(rule, 0) + 1
            continue
        out.append(result(finding, index, names))
    return out, cut


def left_out_note(rule: str, count: int, index: Mapping[str, int]) -> dict[str, Any]:
    """A note of the invocation: how many results of a rule this log leaves out."""
    associated: dict[str, Any] = {"id": rule}
    if rule in index:
        associated["index"] = index[rule]
    return {
        "level": "note",
        "message": {
            "text": f"{count:,} more results of {message_text(rule)} left out of this report "
            f"(it keeps at most {MAX_RESULTS_PER_RULE:,} per rule)"
        },
        "associatedRule": associated,
    }


def sarif_log(report: Report, *, information_uri: str | None = None) -> dict[str, Any]:
    """The SARIF log of a report, as JSON-ready data."""
    index = {check.id: i for i, check in enumerate(REGISTRY)}
    names = {e.id: e.name for e in report.scan.environments}
    findings = report.findings
    scan = report.scan
    question = report.question
    listed, cut = results(report, index, names)
    notes = [left_out_note(rule, n, index) for rule, n in cut.items()]
    left_out = {"resultsLeftOut": dict(cut)} if cut else {}
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "auditor",
                        "version": report.generator.version,
                        "informationUri": information_uri or question.url,
                        "rules": [rule(check.meta) for check in REGISTRY],
                    }
                },
                # "category/instance": code scanning keeps one analysis per category
                # (SARIF 3.17.4), so every scan of this question replaces the previous one.
                "automationDetails": {
                    "id": f"auditor/{question.id}/{_run_name(scan)}",
                    "description": {"text": plain(question.title)},
                },
                "invocations": [
                    {
                        "executionSuccessful": scan.status != "failed",
                        "toolExecutionNotifications": [
                            *(
                                notification(f, index, names)
                                for f in findings
                                if f.status == "not-assessed" and not f.suppressed
                            ),
                            *notes,
                        ],
                        "properties": {
                            "scanId": scan.id,
                            "scanStatus": scan.status,
                            "window": asdict(scan.window),
                            "generated": report.generated,
                        },
                    }
                ],
                "results": listed,
                "properties": {
                    "question": question.id,
                    "questionUrl": question.url,
                    "verdict": report.verdict,
                    "answers": {a.id: a.judgement.verdict for a in report.answers},
                    **left_out,
                },
            }
        ],
    }


def _run_name(scan: Scan) -> str:
    # A lint run of a pipeline replaces the previous lint, a scan the previous scan.
    return "lint" if scan.kind == "lint" else f"scan-{scan.id}"


def render(report: Report, *, information_uri: str | None = None) -> str:
    """`report.sarif`: the SARIF log of a report as JSON text (UTF-8 when written)."""
    log = sarif_log(report, information_uri=information_uri)
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"


__all__ = [
    "FINGERPRINT",
    "LEVELS",
    "MAX_RESULTS_PER_RULE",
    "fingerprint",
    "plain",
    "render",
    "results",
    "sarif_log",
]
