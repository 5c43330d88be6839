"""The engine that "runs" a simulated cloud flow's definition for one intended outcome.

`execute` walks a definition the way the Logic Apps engine does (runAfter compared
case-insensitively, non-taken branches Skipped, Terminate ends the run, a Catch scope that runs
after a failure handles it) and returns every action's result. The generator uses it to derive
each run's status from its intended outcome, and `scenario.render_actions` uses it to build the
action results served by the flow API, so runs and actions can never disagree.
https://learn.microsoft.com/azure/logic-apps/error-exception-handling
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from auditor.sim.flow_operations import DATA_OPS

# Intended outcome of a run (`runs._sim_outcome`).
OK, NOOP, FAIL, CANCEL = 0, 1, 2, 3
# Throttling of the run's throttled action (`runs._sim_retry`).
NO_RETRY, RETRY_RECOVERED, RETRY_EXHAUSTED = 0, 1, 2

# Default policy retries for a throttled call (Power Automate default policy, medium profile,
# up to 8; we use 4 so the run history stays short).
# https://learn.microsoft.com/power-automate/limits-and-config#retry-policy
DEFAULT_RETRIES = 4

# Errors a failing connector call reports (Power Automate error reference).
# https://learn.microsoft.com/power-automate/error-reference
ACTION_ERRORS: tuple[tuple[str, str, str], ...] = (
    ("BadRequest", "InvalidRequest", "The request is invalid: field 'title' is required."),
    ("InternalServerError", "InternalServerError", "An unexpected error occurred on the server."),
    ("NotFound", "ResourceNotFound", "The requested item was not found."),
    ("Forbidden", "Forbidden", "Access denied. You do not have permission to perform this action."),
)
THROTTLE_MESSAGE = "Rate limit is exceeded. Try again in 26 seconds."
RUN_FAILED_MESSAGE = "An action failed. No dependent actions succeeded."


@dataclass
class ActionResult:
    """One action's result in one run, before times are laid out."""

    name: str
    status: str
    code: str | None
    error: tuple[str, str] | None = None
    retries: int = 0  # entries in retryHistory
    retry_code: str | None = None
    repetitions: int | None = None
    weight: float = 0.0  # relative duration of the action itself
    children: list[ActionResult] = field(default_factory=list)


@dataclass
class RunResult:
    """The run-level result of playing a definition for one intended outcome."""

    status: str
    code: str | None
    error_code: str | None
    error_message: str | None
    actions: list[ActionResult]


@dataclass
class _Ctx:
    plan: Mapping[str, Any]
    outcome: int
    retry: int
    variant: int
    fail_action: str | None
    stopped: bool = False
    run_status: str | None = None
    run_error: tuple[str, str] | None = None
    cancelled: bool = False


def _order(actions: Mapping[str, Any]) -> list[str]:
    """Actions of one container in an order that respects runAfter (stable)."""
    names = list(actions)
    done: list[str] = []
    placed: set[str] = set()
    while len(done) < len(names):
        progressed = False
        for name in names:
            if name in placed:
                continue
            preds = (actions[name].get("runAfter") or {}).keys()
            if all(p in placed or p not in actions for p in preds):
                done.append(name)
                placed.add(name)
                progressed = True
        if not progressed:  # a cycle: keep definition order for the rest
            done.extend(n for n in names if n not in placed)
            break
    return done


def _skip_all(actions: Mapping[str, Any], code: str, message: str) -> list[ActionResult]:
    out: list[ActionResult] = []
    for name, action in actions.items():
        out.append(_skipped(name, action, code, message))
    return out


def children_of(action: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    kids: list[Mapping[str, Any]] = []
    if isinstance(action.get("actions"), Mapping):
        kids.append(action["actions"])
    els = action.get("else")
    if isinstance(els, Mapping) and isinstance(els.get("actions"), Mapping):
        kids.append(els["actions"])
    cases = action.get("cases")
    if isinstance(cases, Mapping):
        for case in cases.values():
            if isinstance(case, Mapping) and isinstance(case.get("actions"), Mapping):
                kids.append(case["actions"])
    default = action.get("default")
    if isinstance(default, Mapping) and isinstance(default.get("actions"), Mapping):
        kids.append(default["actions"])
    return kids


def _skipped(name: str, action: Mapping[str, Any], code: str, message: str) -> ActionResult:
    result = ActionResult(name, "Skipped", "ActionSkipped", (code, message.format(name=name)))
    for kids in children_of(action):
        result.children.extend(_skip_all(kids, code, message))
    return result


_NOT_TAKEN = "The execution of template action '{name}' skipped: the branching condition for this action is not satisfied."  # noqa: E501


def _container(actions: Mapping[str, Any], ctx: _Ctx, out: list[ActionResult]) -> bool:
    """Run one container; True when it ends with a failure nothing handled."""
    status: dict[str, str] = {}
    failed: list[str] = []
    handled: set[str] = set()
    for name in _order(actions):
        if ctx.stopped:
            break
        action = actions[name]
        unmet: tuple[str, list[str], str] | None = None
        run_after = action.get("runAfter") or {}
        for pred, wanted in run_after.items():
            got = status.get(pred, "Skipped")
            if got.lower() not in [str(w).lower() for w in wanted]:
                unmet = (pred, [str(w) for w in wanted], got)
                break
        if unmet is not None:
            pred, wanted, got = unmet
            message = (
                f"The execution of template action '{{name}}' is skipped: the 'runAfter' "
                f"condition for action '{pred}' is not satisfied. Expected status values "
                f"'{', '.join(wanted)}' and actual value '{got}'."
            )
            res = _skipped(name, action, "ActionConditionFailed", message)
        else:
            for pred in run_after:
                if status.get(pred) in ("Failed", "TimedOut"):
                    handled.add(pred)
            res = _run(name, action, ctx)
        out.append(res)
        status[name] = res.status
        if res.status in ("Failed", "TimedOut"):
            failed.append(name)
    return any(f not in handled for f in failed)


def _close(res: ActionResult, unhandled: bool) -> None:
    if any(c.status == "Cancelled" for c in res.children):
        res.status, res.code = "Cancelled", "Cancelled"
    elif unhandled:
        res.status, res.code = "Failed", "ActionFailed"
        res.error = ("ActionFailed", RUN_FAILED_MESSAGE)


def _run(name: str, action: Mapping[str, Any], ctx: _Ctx) -> ActionResult:
    kind = str(action.get("type", "")).lower()
    plan = ctx.plan
    weight = float(plan["weights"].get(name, 1.0))
    if kind in ("scope", "foreach", "until"):
        reps = int(plan["foreach"].get(name, 3)) if kind != "scope" else None
        res = ActionResult(name, "Succeeded", "OK", repetitions=reps, weight=0.05)
        unhandled = _container(action.get("actions") or {}, ctx, res.children)
        if reps is not None:
            _repeat(res.children, reps)
        _close(res, unhandled)
        return res
    if kind == "if":
        branch = str(plan["if"].get(name, {}).get(str(ctx.outcome), "yes"))
        yes = action.get("actions") or {}
        no = (action.get("else") or {}).get("actions") or {}
        taken, other = (yes, no) if branch == "yes" else (no, yes)
        res = ActionResult(name, "Succeeded", "OK", weight=0.05)
        unhandled = _container(taken, ctx, res.children)
        res.children.extend(_skip_all(other, "ActionBranchingConditionNotSatisfied", _NOT_TAKEN))
        _close(res, unhandled)
        return res
    if kind == "switch":
        cases = action.get("cases") or {}
        sw = plan["switch"].get(name, {"ok": list(cases), "noop": "default"})
        ok_cases = list(sw.get("ok") or [])
        if ctx.outcome == NOOP or not ok_cases:
            chosen = "default"
        else:
            chosen = ok_cases[ctx.variant % len(ok_cases)]
        res = ActionResult(name, "Succeeded", "OK", weight=0.05)
        bodies = {k: (v or {}).get("actions") or {} for k, v in cases.items()}
        bodies["default"] = (action.get("default") or {}).get("actions") or {}
        unhandled = _container(bodies[chosen], ctx, res.children)
        for key, body in bodies.items():
            if key != chosen:
                res.children.extend(
                    _skip_all(body, "ActionBranchingConditionNotSatisfied", _NOT_TAKEN)
                )
        _close(res, unhandled)
        return res
    if kind == "terminate":
        inputs = action.get("inputs") or {}
        run_status = str(inputs.get("runStatus", "Succeeded"))
        ctx.stopped = True
        ctx.run_status = run_status
        if run_status == "Failed":
            err = inputs.get("runError") or {}
            ctx.run_error = (str(err.get("code") or "Terminated"), str(err.get("message") or ""))
            return ActionResult(name, "Failed", "Terminated", ctx.run_error, weight=0.05)
        return ActionResult(name, run_status, "OK", weight=0.05)
    if kind == "response":
        return ActionResult(name, "Succeeded", "OK", weight=0.2)
    # A leaf that does something: connector call, HTTP, child flow, data operation.
    if kind in _LIGHT:
        weight *= 0.05  # data operations take milliseconds, calls take seconds
    if plan.get("cancel") == name and ctx.outcome == CANCEL:
        ctx.stopped = True
        ctx.cancelled = True
        return ActionResult(name, "Cancelled", "Cancelled", weight=weight)
    if ctx.fail_action == name:
        if ctx.retry == RETRY_EXHAUSTED:
            count = _retry_count(action)
            return ActionResult(
                name,
                "Failed",
                "TooManyRequests",
                ("429", THROTTLE_MESSAGE),
                retries=count,
                retry_code="TooManyRequests",
                weight=weight * (1 + count),
            )
        code, err_code, message = ACTION_ERRORS[ctx.variant % len(ACTION_ERRORS)]
        return ActionResult(name, "Failed", code, (err_code, message), weight=weight)
    if ctx.retry == RETRY_RECOVERED and plan.get("throttle") == name:
        count = 1 + ctx.variant % 3
        return ActionResult(
            name,
            "Succeeded",
            "OK",
            retries=count,
            retry_code="TooManyRequests",
            weight=weight * (1 + count),
        )
    ok_code = "Created" if "Create" in name or "Add_a" in name else "OK"
    return ActionResult(name, "Succeeded", ok_code, weight=weight)


_LIGHT = {kind.lower() for kind, _ in DATA_OPS} | {"initializevariable"}


def span(result: ActionResult) -> float:
    """Relative time an action takes with everything nested in it (0 when Skipped)."""
    if result.status == "Skipped":
        return 0.0
    return result.weight + sum(span(c) for c in result.children)


def run_span(result: RunResult) -> float:
    """Relative time of a whole run: the sum of its top-level actions."""
    return sum(span(a) for a in result.actions)


def _retry_count(action: Mapping[str, Any]) -> int:
    policy = (action.get("inputs") or {}).get("retryPolicy") or {}
    kind = str(policy.get("type", "default")).lower()
    if kind == "none":
        return 0
    if kind in ("exponential", "fixed"):
        return int(policy.get("count", DEFAULT_RETRIES))
    return DEFAULT_RETRIES


def _repeat(children: list[ActionResult], reps: int) -> None:
    for child in children:
        if child.status != "Skipped":
            child.repetitions = reps
            child.weight *= reps
        _repeat(child.children, reps)


def execute(
    definition: Mapping[str, Any], plan: Mapping[str, Any], outcome: int, retry: int, variant: int
) -> RunResult:
    """Play a definition for one intended outcome; deterministic in its arguments."""
    fail_action: str | None = None
    if outcome == FAIL:
        if retry == RETRY_EXHAUSTED and plan.get("throttle"):
            fail_action = str(plan["throttle"])
        elif plan["fail"]:
            fail_action = str(plan["fail"][variant % len(plan["fail"])])
    ctx = _Ctx(plan, outcome, retry, variant, fail_action)
    actions: list[ActionResult] = []
    unhandled = _container(definition.get("actions") or {}, ctx, actions)
    if ctx.run_status is not None:
        status = ctx.run_status
    elif ctx.cancelled:
        status = "Cancelled"
    elif unhandled:
        status = "Failed"
    else:
        status = "Succeeded"
    if status == "Failed":
        code, message = ctx.run_error or ("ActionFailed", RUN_FAILED_MESSAGE)
        return RunResult(status, code, code, message, actions)
    if status == "Cancelled":
        return RunResult(status, "Cancelled", None, None, actions)
    return RunResult(status, None, None, None, actions)
