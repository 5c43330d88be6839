"""flow-repeated-block (rule R-CHILD of tests/corpus/README.md): a block of
`repeated_sequence_length` consecutive actions of one container, holding an external call,
whose content (operation, parameters set, target; not names) recurs in
`repeated_sequence_flows` or more enabled flows of one solution (the environment's flows
when the solution is unknown), or that many times without overlap inside one flow, fails."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from auditor.analysis.block_signatures import block_signatures
from auditor.analysis.definitions import definition_frames
from auditor.frames import Frames, flow_definitions
from auditor.lint.inputs import LintFlow, LintInputs, read_inputs
from auditor.lint.run import lint_frames
from auditor.settings import Settings
from tests.checks.builders import (
    ENV,
    connector_action,
    definition,
    environment,
    flow,
    frames,
    run,
    statuses,
)

CHECK = "flow-repeated-block"
ENV2 = "env-2"

# The pasted block: read, compose, write, call, notify.
BLOCK: tuple[dict[str, Any], ...] = (
    connector_action("GetItem", api="shared_sharepointonline"),
    {"type": "Compose", "inputs": "@body('read')"},
    connector_action("UpdateRecord"),
    {"type": "Http", "inputs": {"method": "POST", "uri": "https://example.com/hook"}},
    connector_action("SendEmailV2", api="shared_office365"),
)


def sequence(
    steps: Sequence[Mapping[str, Any]], prefix: str, *, reverse_keys: bool = False
) -> dict[str, Any]:
    """The steps as one container, each run after the previous one; names carry `prefix`
    (copies get renamed). `reverse_keys` writes them in reverse dict order."""
    out: dict[str, Any] = {}
    for i, step in enumerate(steps):
        run_after = {f"{prefix}_{i - 1}": ["Succeeded"]} if i else {}
        out[f"{prefix}_{i}"] = {**step, "runAfter": run_after}
    if reverse_keys:
        out = dict(reversed(list(out.items())))
    return out


def with_step(index: int, step: Mapping[str, Any]) -> list[dict[str, Any]]:
    """BLOCK with one step replaced."""
    steps = [dict(s) for s in BLOCK]
    steps[index] = dict(step)
    return steps


def environment_finding(found: list[Any], env: str = ENV) -> Any:
    return next(f for f in found if f.resource_id == env)


def test_block_in_three_flows_fails_in_two_passes() -> None:
    """Three copies make a child-flow candidate; two do not (at the default of 3)."""
    three = run(CHECK, frames(flows=[flow(f"f{i}", sequence(BLOCK, f"a{i}")) for i in range(3)]))
    assert [f.status for f in three] == ["fail"]
    assert three[0].resource_kind == "action-block"
    assert three[0].values == {"flows": 3, "length": 5}
    assert sorted(row["flow_id"] for row in three[0].evidence) == ["f0", "f1", "f2"]

    two = run(CHECK, frames(flows=[flow(f"f{i}", sequence(BLOCK, f"a{i}")) for i in range(2)]))
    assert statuses(two) == {ENV: "pass"}
    assert two[0].values == {"enabled_flows": 2}


def test_stopped_flows_do_not_count() -> None:
    """Only enabled flows hold live copies."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("f0", sequence(BLOCK, "a")),
                flow("f1", sequence(BLOCK, "b")),
                flow("f2", sequence(BLOCK, "c"), state="Stopped"),
            ]
        ),
    )
    assert statuses(found) == {ENV: "pass"}
    assert found[0].values == {"enabled_flows": 2}


def test_copies_match_by_run_after_order_and_placement_not_names() -> None:
    """Renamed copies, written in another key order, inside a scope or between other
    actions, are the same block."""
    wrapped = {"Wrapper": {"type": "Scope", "actions": sequence(BLOCK, "inner")}}
    padded = sequence([{"type": "Compose"}, *BLOCK, {"type": "Terminate"}], "pad")
    found = run(
        CHECK,
        frames(
            flows=[
                flow("plain", sequence(BLOCK, "Step")),
                flow("reordered", sequence(BLOCK, "Other", reverse_keys=True)),
                flow("wrapped", wrapped),
                flow("padded", padded),
            ]
        ),
    )
    assert [f.status for f in found] == ["fail"]
    assert found[0].values == {"flows": 4, "length": 5}


@pytest.mark.parametrize(
    "changed",
    [
        with_step(2, connector_action("CreateRecord")),
        with_step(3, {"type": "Http", "inputs": {"method": "GET", "uri": "https://x"}}),
        with_step(4, connector_action("SendEmailV2", api="shared_outlook")),
    ],
    ids=["operation", "http-method", "connector"],
)
def test_a_different_signature_breaks_the_block(changed: list[dict[str, Any]]) -> None:
    """CreateRecord is not UpdateRecord, GET is not POST, Outlook.com is not Office 365."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("f0", sequence(BLOCK, "a")),
                flow("f1", sequence(BLOCK, "b")),
                flow("f2", sequence(changed, "c")),
            ]
        ),
    )
    assert statuses(found) == {ENV: "pass"}


def test_two_copies_in_one_flow_count_as_one_flow() -> None:
    """The rule counts flows holding the block, not copies."""
    twice = {
        "First": {"type": "Scope", "actions": sequence(BLOCK, "x")},
        "Second": {
            "type": "Scope",
            "actions": sequence(BLOCK, "y"),
            "runAfter": {"First": ["Succeeded"]},
        },
    }
    found = run(CHECK, frames(flows=[flow("f0", twice), flow("f1", sequence(BLOCK, "b"))]))
    assert statuses(found) == {ENV: "pass"}


def test_a_block_split_across_containers_is_not_consecutive() -> None:
    """Three actions at the top and two in a scope are not five consecutive actions."""
    split = {
        **sequence(BLOCK[:3], "top"),
        "Scope": {
            "type": "Scope",
            "actions": sequence(BLOCK[3:], "inner"),
            "runAfter": {"top_2": ["Succeeded"]},
        },
    }
    found = run(
        CHECK,
        frames(
            flows=[
                flow("f0", sequence(BLOCK, "a")),
                flow("f1", sequence(BLOCK, "b")),
                flow("f2", split),
            ]
        ),
    )
    assert statuses(found) == {ENV: "pass"}


def test_length_from_settings_flips_the_verdict() -> None:
    """Four shared actions are a block when `repeated_sequence_length` is 4, not at 5."""
    last_differs = with_step(4, {"type": "Compose"})
    data = frames(
        flows=[
            flow("f0", sequence(BLOCK, "a")),
            flow("f1", sequence(BLOCK, "b")),
            flow("f2", sequence(last_differs, "c")),
        ]
    )
    assert statuses(run(CHECK, data)) == {ENV: "pass"}
    found = run(CHECK, data, Settings(thresholds={CHECK: {"repeated_sequence_length": 4}}))
    assert [f.status for f in found] == ["fail"]
    assert found[0].values == {"flows": 3, "length": 4}


def test_flow_count_from_settings_flips_the_verdict() -> None:
    """Two copies are too many when `repeated_sequence_flows` is 2."""
    data = frames(flows=[flow("f0", sequence(BLOCK, "a")), flow("f1", sequence(BLOCK, "b"))])
    assert statuses(run(CHECK, data)) == {ENV: "pass"}
    found = run(CHECK, data, Settings(thresholds={CHECK: {"repeated_sequence_flows": 2}}))
    assert [f.status for f in found] == ["fail"]
    assert found[0].values == {"flows": 2, "length": 5}


def test_copies_in_different_environments_do_not_add_up() -> None:
    """Each environment is its own catalog of flows: 2 + 1 copies are not 3."""
    found = run(
        CHECK,
        frames(
            environments=[environment(), environment(ENV2, "Fabrikam")],
            flows=[
                flow("f0", sequence(BLOCK, "a")),
                flow("f1", sequence(BLOCK, "b")),
                flow("f2", sequence(BLOCK, "c"), env=ENV2),
            ],
        ),
    )
    assert statuses(found) == {ENV: "pass", ENV2: "pass"}
    assert environment_finding(found, ENV2).values == {"enabled_flows": 1}


# Content, not shape -------------------------------------------------------------------------


def dataverse_write(table: str, *columns: str, operation: str = "UpdateRecord") -> dict[str, Any]:
    """A Dataverse write of `columns` to `table`."""
    action = connector_action(operation)
    action["inputs"]["parameters"] = {
        "entityName": table,
        "recordId": "@triggerBody()?['id']",
        **{f"item/{column}": "x" for column in columns},
    }
    return action


def initialize(name: str) -> dict[str, Any]:
    return {
        "type": "InitializeVariable",
        "inputs": {"variables": [{"name": name, "type": "string", "value": ""}]},
    }


def solution_flow(
    flow_id: str, actions: Mapping[str, Any], solution: str | None, *, name: str | None = None
) -> dict[str, Any]:
    """A `workflows` row of a flow shipped in `solution` (as `auditor lint` builds it)."""
    return {
        "environment_id": ENV,
        "workflowid": flow_id,
        "name": name or f"Flow {flow_id}",
        "category": 5,
        "type": 1,
        "statecode": 1,
        "clientdata": json.dumps(definition(actions)),
        "solution": solution,
    }


def test_the_same_operation_on_another_table_or_columns_is_another_block() -> None:
    """Content, not shape: UpdateRecord of account.name is not UpdateRecord of contact.name,
    nor of account.phone (R-CHILD: the parameters it sets, the table it targets)."""
    base = with_step(2, dataverse_write("account", "name"))
    found = run(
        CHECK,
        frames(
            flows=[
                flow("f0", sequence(base, "a")),
                flow("f1", sequence(base, "b")),
                flow("f2", sequence(with_step(2, dataverse_write("contact", "name")), "c")),
                flow("f3", sequence(with_step(2, dataverse_write("account", "phone")), "d")),
            ]
        ),
    )
    assert statuses(found) == {ENV: "pass"}
    third = run(
        CHECK,
        frames(flows=[flow(f"f{i}", sequence(base, f"copy{i}")) for i in range(3)]),
    )
    assert [f.status for f in third] == ["fail"]


def test_renamed_copies_with_parameters_in_another_order_match() -> None:
    """The designer's names and the order parameters are written in are not content."""
    write = dataverse_write("account", "name", "phone")
    params = write["inputs"]["parameters"]
    reordered = {
        **write,
        "inputs": {**write["inputs"], "parameters": dict(reversed(params.items()))},
    }
    found = run(
        CHECK,
        frames(
            flows=[
                flow("f0", sequence(with_step(2, write), "Get_the_account")),
                flow("f1", sequence(with_step(2, reordered), "Lookup")),
                flow("f2", sequence(with_step(2, write), "x"), trigger={"type": "Recurrence"}),
            ]
        ),
    )
    assert [f.status for f in found] == ["fail"]
    assert found[0].values == {"flows": 3, "length": 5}


def test_a_block_of_variable_initialisations_is_no_candidate() -> None:
    """A child flow cannot initialise its parent's variables: five Initialize variable
    actions (or any block of data actions only) in every flow are not a repeated block."""
    variables = [initialize(f"var{i}") for i in range(5)]
    data_only = [initialize("a"), {"type": "Compose", "inputs": "x"}, *variables[:3]]
    for steps in (variables, data_only):
        found = run(
            CHECK, frames(flows=[flow(f"f{i}", sequence(steps, f"v{i}")) for i in range(4)])
        )
        assert statuses(found) == {ENV: "pass"}
    # One external call makes the same block a candidate.
    with_call = [*variables[:4], connector_action("GetItem", api="shared_sharepointonline")]
    found = run(
        CHECK, frames(flows=[flow(f"f{i}", sequence(with_call, f"v{i}")) for i in range(3)])
    )
    assert [f.status for f in found] == ["fail"]


def test_the_message_names_actions_and_flows_as_the_designer_shows_them() -> None:
    found = run(
        CHECK,
        frames(flows=[flow(f"f{i}", sequence(BLOCK, f"Step_{i}")) for i in (2, 0, 1)]),
    )
    assert found[0].message == (
        "the same 5 actions (from 'Step 0 0' to 'Step 0 4') appear in 3 flows of this "
        "environment: 'Flow f0', 'Flow f1', 'Flow f2'"
    )
    assert found[0].resource_name == "block from 'Step 0 0' to 'Step 0 4'"
    assert [row["start_action"] for row in found[0].evidence] == [
        "Step_0_0",
        "Step_1_0",
        "Step_2_0",
    ]
    assert {row["display_name"] for row in found[0].evidence} == {"Flow f0", "Flow f1", "Flow f2"}


def test_a_longer_block_is_reported_once_with_its_length() -> None:
    """Seven shared actions are one block of 7, not three overlapping blocks of 5."""
    longer = [*BLOCK, {"type": "Compose", "inputs": "done"}, connector_action("DeleteRecord")]
    found = run(CHECK, frames(flows=[flow(f"f{i}", sequence(longer, f"s{i}")) for i in range(3)]))
    assert [f.status for f in found] == ["fail"]
    assert found[0].values == {"flows": 3, "length": 7}
    assert "from 's0 0' to 's0 6'" in found[0].message


# Scope: a solution, or one flow -------------------------------------------------------------


def test_copies_in_unrelated_solutions_do_not_add_up() -> None:
    """Three solutions with one copy each: no solution has a child-flow candidate."""
    found = run(
        CHECK,
        frames(
            workflows=[
                solution_flow(f"f{i}", sequence(BLOCK, f"a{i}"), solution)
                for i, solution in enumerate(["Invoices", "HR", "Sales"])
            ]
        ),
    )
    assert statuses(found) == {ENV: "pass"}


def test_copies_in_one_solution_fail_once_per_solution() -> None:
    """Three copies in Invoices fail, naming it; two in HR plus one whose solution is unknown
    do not, nor do they count with Invoices."""
    rows = [
        *(solution_flow(f"inv{i}", sequence(BLOCK, f"a{i}"), "Invoices") for i in range(3)),
        *(solution_flow(f"hr{i}", sequence(BLOCK, f"b{i}"), "HR") for i in range(2)),
        solution_flow("loose", sequence(BLOCK, "c"), None),
    ]
    found = run(CHECK, frames(workflows=rows))
    assert [f.status for f in found] == ["fail"]
    assert found[0].values == {"flows": 3, "length": 5}
    assert "appear in 3 flows of solution Invoices: 'Flow inv0', 'Flow inv1'" in found[0].message
    assert {row["flow_id"] for row in found[0].evidence} == {"inv0", "inv1", "inv2"}
    assert str(found[0].resource_id).endswith("-5@Invoices")


def test_solution_column_reaches_flow_definitions() -> None:
    """`solution` comes from the workflows frame when it has one, else it is NA."""
    data = frames(workflows=[solution_flow("w", {}, "Invoices")], flows=[flow("api-only", {})])
    solutions = flow_definitions(data).set_index("flow_id")["solution"]
    assert solutions["w"] == "Invoices"
    assert pd.isna(solutions["api-only"])
    assert "solution" not in Frames.from_frames(data.window, workflows=pd.DataFrame()).workflows


def test_three_copies_inside_one_flow_fail() -> None:
    """The same block at the top, in a scope and in a condition's branch of one flow."""
    copies = {
        **sequence(BLOCK, "top"),
        "Scope": {
            "type": "Scope",
            "actions": sequence(BLOCK, "inner"),
            "runAfter": {"top_4": ["Succeeded"]},
        },
        "Check": {
            "type": "If",
            "expression": {"equals": [1, 1]},
            "actions": sequence(BLOCK, "yes"),
            "else": {"actions": {}},
            "runAfter": {"Scope": ["Succeeded"]},
        },
    }
    found = run(CHECK, frames(flows=[flow("f0", copies)]))
    assert [f.status for f in found] == ["fail"]
    assert found[0].values == {"copies": 3, "length": 5}
    assert found[0].message == (
        "the same 5 actions (from 'top 0' to 'top 4') appear 3 times in the flow 'Flow f0'"
    )
    assert [row["scope_path"] for row in found[0].evidence] == ["", "Scope", "Check/then"]


def test_copies_in_one_container_count_without_overlap() -> None:
    """Three copies pasted one after the other in a container count 3; ten identical calls
    in a row are two copies of a five-call block, not six overlapping ones."""
    three = sequence([*BLOCK, *BLOCK, *BLOCK], "p")
    found = run(CHECK, frames(flows=[flow("f0", three)]))
    assert [f.status for f in found] == ["fail"]
    assert found[0].values == {"copies": 3, "length": 5}
    assert [row["start_action"] for row in found[0].evidence] == ["p_0", "p_5", "p_10"]
    same = sequence([connector_action("GetItem", api="shared_sharepointonline")] * 10, "g")
    assert statuses(run(CHECK, frames(flows=[flow("f0", same)]))) == {ENV: "pass"}


def test_two_copies_inside_one_flow_pass_unless_the_threshold_is_two() -> None:
    twice = {
        **sequence(BLOCK, "x"),
        "Again": {
            "type": "Scope",
            "actions": sequence(BLOCK, "y"),
            "runAfter": {"x_4": ["Succeeded"]},
        },
    }
    data = frames(flows=[flow("f0", twice)])
    assert statuses(run(CHECK, data)) == {ENV: "pass"}
    found = run(CHECK, data, Settings(thresholds={CHECK: {"repeated_sequence_flows": 2}}))
    assert [(f.status, f.values) for f in found] == [("fail", {"copies": 2, "length": 5})]


# Real flows of the corpus -------------------------------------------------------------------

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
APPROVALS = CORPUS / "microsoft__powercat-business-approvals-kit/BusinessApprovalKit"
APPROVALS_FLOWS = APPROVALS / "SolutionPackage/src/Workflows"
START_NODE = APPROVALS_FLOWS / "BACoreRuntime-StartNode-D0CCBEBF-D08C-EC11-8D20-000D3A09D351.json"
SEND_REMINDER = APPROVALS_FLOWS / "BACoreSendReminder-0BC0B71B-0BFD-EE11-A1FE-000D3A16BED5.json"
REVIEW = CORPUS / (
    "pnp__powerautomate-samples/samples/request-review-and-approval-for-a-selected-file/sourcecode"
)
# The five "Initialize variable" actions that the old (type, connector, operation) key
# matched across these four unrelated solutions.
UNRELATED = (
    APPROVALS_FLOWS / "BACoreChildEvaluateRule-A361AA67-04AD-EC11-983E-0022486E1632.json",
    CORPUS / "microsoft__powercat-automation-kit/AutomationKitInstaller/SolutionPackage/src"
    "/Workflows/FetchAutomationKitReleases-D62599D4-657F-EF11-AC20-000D3AE9A239.json",
    CORPUS / "pnp__powerplatform-samples/samples/"
    "utility-flow-get-sharepoint-info-from-environment-variables/sourcecode/"
    "ParseListDataSourceInfo/src/Workflows/GetDataSourceListInfo-031ABDA2-427B-EF11-AC20-002248617A98.json",
    CORPUS / "pnp__powerautomate-samples/samples/ProjectForTheWeb-Provisioning/sourcecode/"
    "Microsoft.Flow/flows/bee25535-b328-4aca-ba3f-137376ea82c0/definition.json",
)
NOW = datetime(2026, 11, 15, 12, tzinfo=UTC)


def lint_run(
    inputs: LintInputs, settings: Settings | None = None, paths: Sequence[Path] = (CORPUS,)
) -> list[Any]:
    """The check's findings on flows read as `auditor lint` reads them."""
    return run(CHECK, lint_frames(inputs, paths, NOW), settings)


def test_business_approvals_kit_reminder_block_recurs_within_its_solution() -> None:
    """tests/corpus/microsoft__powercat-business-approvals-kit/BusinessApprovalKit/
    SolutionPackage/src/Workflows/BACoreRuntime-StartNode-D0CCBEBF-...json and
    BACoreSendReminder-0BC0B71B-...json both hold, in a branch of a condition, the five
    actions Next_Reminder_Node, If_Node_Due_Date_Data_Type_Equals_Request_Data,
    Next_Reminder_DateTime, Create_Next_Reminder_Node_Instance (Dataverse create on
    cat_businessapprovalnodereminderinstances) and Update_Node_Instance (Dataverse update of
    cat_businessapprovalruntimenodeinstances). Two flows are under the default of 3; a third
    flow of the solution holding it (a copy saved under a new name) makes it a child-flow
    candidate."""
    inputs = read_inputs([START_NODE, SEND_REMINDER])
    solution = (APPROVALS / "SolutionPackage/src").as_posix()
    assert {f.solution for f in inputs.flows} == {solution}  # the folder above Workflows/
    assert [f.status for f in lint_run(inputs)] == ["pass"]

    two = lint_run(inputs, Settings(thresholds={CHECK: {"repeated_sequence_flows": 2}}))
    assert [(f.status, f.values) for f in two] == [("fail", {"flows": 2, "length": 5})]
    assert two[0].message == (
        "the same 5 actions (from 'Next Reminder Node' to 'Update Node Instance') appear in 2 "
        f"flows of solution {solution}: 'BACore | Runtime - Start Node', 'BACore | Send Reminder'"
    )
    assert [row["start_action"] for row in two[0].evidence] == ["Next_Reminder_Node"] * 2

    reminder = next(f for f in inputs.flows if f.name == "BACore | Send Reminder")
    copy = LintFlow(
        "copy-of-reminder",
        "BACore | Send Reminder (copy)",
        reminder.text,
        reminder.location,
        solution,
    )
    three = LintInputs((*inputs.flows, copy), (), (), (), inputs.files)
    found = lint_run(three)
    assert [(f.status, f.values) for f in found] == [("fail", {"flows": 3, "length": 5})]
    # The same three flows, each in a solution of its own, are no candidate.
    apart = LintInputs(
        tuple(
            LintFlow(f.flow_id, f.name, f.text, f.location, f"solution {i}")
            for i, f in enumerate(three.flows)
        ),
        (),
        (),
        (),
        inputs.files,
    )
    assert [f.status for f in lint_run(apart)] == ["pass"]


def test_request_review_flow_holds_two_copies_of_its_lock_retry_loop_not_three() -> None:
    """tests/corpus/pnp__powerautomate-samples/samples/request-review-and-approval-for-a-
    selected-file/sourcecode/Microsoft.Flow/flows/ff241a62-834c-430c-b3f3-b9612e3125ab/
    definition.json: the bodies of Do_until_1 and Do_until_2 are the same nine actions (get
    file properties, append comments, update SupervisorReviewStatus and
    SupervisorReviewComments, mail that the file is locked, retry...). The third loop,
    Do_until_-_Add_approver_name_to_SP_and_lock_email_if_it_fails, has the same shape but
    its Update_file_properties sets SupervisorReviewer: other content, so two copies, under
    the default of 3 (the corpus label is pass)."""
    inputs = read_inputs([REVIEW])
    assert [f.solution for f in inputs.flows] == [REVIEW.as_posix()]  # above Microsoft.Flow/
    assert [f.status for f in lint_run(inputs, paths=[REVIEW])] == ["pass"]
    found = lint_run(
        inputs, Settings(thresholds={CHECK: {"repeated_sequence_flows": 2}}), paths=[REVIEW]
    )
    assert [(f.status, f.values) for f in found] == [("fail", {"copies": 2, "length": 9})]
    assert "(from 'Get file properties 2' to 'Send a confirmation email 1')" in found[0].message
    assert [row["scope_path"].rsplit("/", 1)[-1] for row in found[0].evidence] == [
        "Do_until_1",
        "Do_until_2",
    ]


def test_five_variable_initialisations_of_unrelated_solutions_are_no_block() -> None:
    """The four flows of UNRELATED (tests/corpus/microsoft__powercat-business-approvals-kit/
    .../BACoreChildEvaluateRule-A361AA67-...json, microsoft__powercat-automation-kit/
    AutomationKitInstaller/.../FetchAutomationKitReleases-D62599D4-...json,
    pnp__powerplatform-samples/.../GetDataSourceListInfo-031ABDA2-...json,
    pnp__powerautomate-samples/samples/ProjectForTheWeb-Provisioning/.../definition.json)
    each start with five Initialize variable actions, which the old type-only key matched:
    a false positive. They are no block: no external call, and four solutions. Even put in
    one environment with no solution known, they do not fail."""
    inputs = read_inputs(list(UNRELATED))
    assert len({f.solution for f in inputs.flows}) == 4
    assert [f.status for f in lint_run(inputs, paths=UNRELATED)] == ["pass"]

    data = frames(flows=[flow(f.flow_id, text=f.text) for f in inputs.flows])
    assert statuses(run(CHECK, data)) == {ENV: "pass"}
    # The old key, (type, connector, operation), finds the block in all four flows.
    texts = pd.DataFrame(
        {
            "environment_id": ENV,
            "flow_id": [f.flow_id for f in inputs.flows],
            "definition_text": [f.text for f in inputs.flows],
        }
    )
    actions = definition_frames(texts)[1]
    old = block_signatures(
        actions.drop(columns=["content_key", "written_columns", "is_external_call"]),
        min_length=5,
        max_length=5,
    )
    assert old.groupby("signature")["flow_id"].nunique().max() == 4
    assert (
        block_signatures(actions, min_length=5, max_length=5)
        .groupby("signature")["flow_id"]
        .nunique()
        .max()
        < 3
    )


def test_a_lone_flow_file_outside_a_solution_has_no_solution(tmp_path: Path) -> None:
    """A flow .json given alone, not in a Workflows/ or Microsoft.Flow/flows/ folder."""
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(definition(sequence(BLOCK, "a"))), encoding="utf-8")
    assert [f.solution for f in read_inputs([path]).flows] == [None]


def test_a_block_pasted_nine_times_in_one_real_flow_fails() -> None:
    """tests/corpus/Grant-Archibald-MS__coe-starter-kit/CenterofExcellenceInnovationBacklog/
    SolutionPackage/Workflows/Addpainpoints-7F166395-3204-EB11-A813-000D3A31CB42.json (CoE
    Starter Kit, UTF-16): the get-record, look-up and add-if-missing steps are pasted once per
    pain point; 5 of them, conditions included, are the same in 6 places. In
    UpdateSoftwareTools-AA0853A1-6F4F-EB11-A813-000D3A5A7846.json the look-up-then-add pairs
    differ in what their conditions hold (some set admin_description): no 3 copies match."""
    from pathlib import Path

    from auditor.lint.run import lint
    from auditor.settings import Settings

    folder = (
        Path(__file__).parents[1]
        / "corpus/Grant-Archibald-MS__coe-starter-kit/CenterofExcellenceInnovationBacklog"
    )
    model = lint([folder], Settings()).model.to_json()
    fails = [f for f in model["findings"] if f["check_id"] == CHECK and f["status"] == "fail"]
    assert {f["evidence"][0]["display_name"] for f in fails} == {"Add pain points"}
    assert any("appear 6 times in the flow 'Add pain points'" in f["message"] for f in fails)
