"""The failure-path model (`analysis.failure_paths`, `analysis.response_paths`) on real
flows of tests/corpus/.

Each test reads one exported definition (named in its docstring, below tests/corpus/),
parses it as the tool does and states what its failure branches and its answers to the
caller are, as read from the definition against R-BRANCH, R-REPORT and R-INVOKED
(tests/corpus/README.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from auditor.analysis.definitions import parse_definition
from auditor.analysis.failure_paths import flow_branches
from auditor.analysis.flow_graph import FlowGraph, reacted
from auditor.analysis.response_paths import response_paths

CORPUS = Path(__file__).resolve().parents[1] / "corpus"

DO_UNTIL = (
    "pnp__powerautomate-samples/samples/exception-handing-in-do-until-loop/sourcecode/"
    "Microsoft.Flow/flows/36b8bfc6-708f-433f-a986-e6fe922b95a2/definition.json"
)
BROKEN_LINKS = (
    "pnp__powerplatform-samples/samples/sharepoint-brokenlinks-checker/sourcecode/src/"
    "Workflows/CheckBrokenLinks-F171EA88-DB8A-EE11-8178-002248C6B93D.json"
)
ITEM_PERMISSIONS = (
    "pnp__powerautomate-samples/samples/sharepoint-set-item-level-permissions/sourcecode/"
    "Microsoft.Flow/flows/6c1f5a59-9746-46ba-bfcf-79bedbbd8208/definition.json"
)
ALWAYS_REPLY = (
    "pnp__powerplatform-samples/samples/always-reply-to-request/sourcecode/src/Workflows/"
    "PatternAlwaysreplytoHTTPrequest-CD602B70-A83E-EE11-BDF3-0022482A4279.json"
)
DATAVERSE_LOOKUPS = (
    "pnp__powerautomate-samples/samples/Set-Dataverse-Lookups/sourcecode/Microsoft.Flow/"
    "flows/01642aa3-8170-4fd9-b923-7bd8965d0014/definition.json"
)
KIT_RELEASES = (
    "microsoft__powercat-automation-kit/AutomationKitInstaller/SolutionPackage/src/"
    "Workflows/FetchAutomationKitReleases-D62599D4-657F-EF11-AC20-000D3AE9A239.json"
)
SESSION_TRACE = (
    "microsoft__powercat-automation-kit/AutomationCoESatellite/SolutionPackage/src/"
    "Workflows/SyncFlowSessionTraceFlowSessionTrigger-1505B81F-4E3D-EC11-8C63-0022480B320D.json"
)
DYNAMIC_APPROVER = (
    "microsoft__powercat-business-approvals-kit/BusinessApprovalKit/SolutionPackage/src/"
    "Workflows/BACoreChildGetDynamicApprover-DCB75FEF-35D6-EC11-A7B5-000D3AF46350.json"
)
LIST_INFO = (
    "pnp__powerplatform-samples/samples/utility-flow-get-sharepoint-info-from-environment-"
    "variables/sourcecode/ParseListDataSourceInfo/src/Workflows/"
    "GetDataSourceListInfo-031ABDA2-427B-EF11-AC20-002248617A98.json"
)


def actions(path: str) -> list[dict[str, Any]]:
    """The action rows of the definition at `path` (below tests/corpus/)."""
    text = (CORPUS / path).read_text(encoding="utf-8-sig")
    parsed = parse_definition(text, flow_id=Path(path).stem, environment_id="corpus")
    assert parsed.error is None
    return parsed.actions


def branches(path: str) -> dict[str, dict[str, object]]:
    """The flow's failure branches by guarded action."""
    found = flow_branches(actions(path))
    by_guard = {str(b["guarded_action"]): b for b in found}
    assert len(by_guard) == len(found)
    return by_guard


def test_a_failure_flag_that_ends_the_run_failed_is_a_catch_that_reports() -> None:
    """pnp__powerautomate-samples/samples/exception-handing-in-do-until-loop/sourcecode/
    Microsoft.Flow/flows/36b8bfc6-708f-433f-a986-e6fe922b95a2/definition.json

    Inside `Do_until`, `On_failure_set_'Do_Until_Status'_to_Exception` runs after `Scope`
    [Failed] and sets the variable the loop's expression reads, so the failure ends the
    loop; the Condition after the loop reads it too and ends the run with Terminate Failed.
    The flag carries the failure to a report: a catch that reports (R-BRANCH)."""
    found = branches(DO_UNTIL)
    assert list(found) == ["Scope"]
    branch = found["Scope"]
    assert branch["catch_action"] == "On_failure_set_'Do_Until_Status'_to_Exception"
    assert branch["scope_path"] == "Do_until"
    assert branch["kind"] == "catch"
    assert branch["members"] == 1
    assert branch["reports_failure"]
    assert not branch["success_on_failure"]
    assert "Terminate Failed" in str(branch["how"])


def test_link_probes_use_failure_as_data() -> None:
    """pnp__powerplatform-samples/samples/sharepoint-brokenlinks-checker/sourcecode/src/
    Workflows/CheckBrokenLinks-F171EA88-DB8A-EE11-8178-002248C6B93D.json

    A link that cannot be fetched is a broken link: `Send_http_request_to_link_-_site` (a
    GET) runs after `Get_link_content_-_file` [Failed], and the two
    `Append_to_BrokenLinks_variable...` actions run after the probes [Failed]; the
    BrokenLinks variable is read later to write the list item. None of these is a catch."""
    found = branches(BROKEN_LINKS)
    assert set(found) == {
        "Get_link_content_-_file",
        "Send_http_request_to_link_-_site",
        "Send_http_request_to_the_link_source",
    }
    assert {str(b["catch_action"]) for b in found.values()} == {
        "Send_http_request_to_link_-_site",
        "Append_to_BrokenLinks_variable_-_SharePoint_link",
        "Append_to_BrokenLinks_variable_",
    }
    assert {b["kind"] for b in found.values()} == {"data"}
    assert not any(b["reports_failure"] or b["success_on_failure"] for b in found.values())


def test_an_unread_compose_catch_reports_nothing() -> None:
    """pnp__powerautomate-samples/samples/sharepoint-set-item-level-permissions/sourcecode/
    Microsoft.Flow/flows/6c1f5a59-9746-46ba-bfcf-79bedbbd8208/definition.json

    `Catch` runs after `Try` [Failed, TimedOut] and holds only `Error_message`, a Compose
    that nothing reads: the failure is swallowed and the run ends Succeeded."""
    found = branches(ITEM_PERMISSIONS)
    assert list(found) == ["Try"]
    branch = found["Try"]
    assert branch["catch_action"] == "Catch"
    assert branch["kind"] == "catch"
    assert branch["members"] == 2
    assert not branch["reports_failure"]
    assert not branch["ends_failed"]
    assert not branch["answers"]
    assert not branch["success_on_failure"]
    assert branch["how"] == "only data actions"
    paths = response_paths(actions(ITEM_PERMISSIONS))
    assert paths.responses == 0
    assert paths.silent_catches == ("'Catch' (after 'Try' fails)",)


def test_response_500_and_terminate_failed_report_and_every_path_answers() -> None:
    """pnp__powerplatform-samples/samples/always-reply-to-request/sourcecode/src/Workflows/
    PatternAlwaysreplytoHTTPrequest-CD602B70-A83E-EE11-BDF3-0022482A4279.json

    `Response_OK` (200) runs after `Scope` [Succeeded]; `Response_Error` (500) after
    [Failed, TimedOut, Skipped], then `Terminate_with_Failed`."""
    found = branches(ALWAYS_REPLY)
    assert list(found) == ["Scope"]
    branch = found["Scope"]
    assert branch["catch_action"] == "Response_Error"
    assert branch["kind"] == "catch"
    assert branch["reports_failure"]
    assert branch["ends_failed"]
    assert branch["answers"]
    assert not branch["success_on_failure"]
    assert branch["how"] == "Terminate Failed; answers 'Response Error' (500)"
    paths = response_paths(actions(ALWAYS_REPLY))
    assert paths.responses == 2
    assert paths.silent_paths == ()
    assert paths.success_on_failure == ()
    assert paths.silent_catches == ()


def test_terminate_succeeded_after_a_tolerating_edge_is_no_branch() -> None:
    """pnp__powerautomate-samples/samples/Set-Dataverse-Lookups/sourcecode/Microsoft.Flow/
    flows/01642aa3-8170-4fd9-b923-7bd8965d0014/definition.json

    `Relate_Primary_Contact_to_Account` runs after `Relate_Contact_to_Account` [Succeeded,
    Failed] and `Terminate` (Succeeded) after `Relate_Actions` [Succeeded, Failed]: both
    edges tolerate an optional step, so neither starts a failure branch and the Terminate
    Succeeded is no success on failure."""
    rows = actions(DATAVERSE_LOOKUPS)
    assert flow_branches(rows) == []
    assert reacted(FlowGraph(rows)) == {"Relate_Contact_to_Account", "Relate_Actions"}
    paths = response_paths(rows)
    assert paths.success_on_failure == ()
    assert paths.silent_catches == ()


def test_empty_catches_leave_the_app_without_an_answer() -> None:
    """microsoft__powercat-automation-kit/AutomationKitInstaller/SolutionPackage/src/
    Workflows/FetchAutomationKitReleases-D62599D4-657F-EF11-AC20-000D3AE9A239.json

    Three empty `..._Catch_` scopes run after their scope [Failed, Skipped, TimedOut];
    `Respond_to_a_Power_App_or_flow` runs only when all three catches were Skipped, Failed or
    TimedOut. After a failure the catch succeeds, so the Response is skipped: the app
    (PowerAppV2 trigger) gets no answer, while the path without failure answers."""
    found = branches(KIT_RELEASES)
    assert found.keys() == {"Scope_Connections", "Scope_Releases", "Scope_Environments"}
    for guarded, branch in found.items():
        assert branch["catch_action"] == f"{guarded}_Catch_"
        assert branch["kind"] == "empty"
        assert branch["members"] == 1
        assert not branch["answers"]
        assert not branch["reports_failure"]
    paths = response_paths(actions(KIT_RELEASES))
    assert paths.responses == 1
    assert paths.silent_paths == ()
    assert paths.success_on_failure == ()
    assert paths.silent_catches == (
        "'Scope Connections Catch ' (after 'Scope Connections' fails)",
        "'Scope Releases Catch ' (after 'Scope Releases' fails)",
        "'Scope Environments Catch ' (after 'Scope Environments' fails)",
    )


def test_a_terminate_cancelled_catch_reports() -> None:
    """microsoft__powercat-automation-kit/AutomationCoESatellite/SolutionPackage/src/
    Workflows/SyncFlowSessionTraceFlowSessionTrigger-1505B81F-4E3D-EC11-8C63-0022480B320D.json

    `Cancel_Run_-_Flow_not_part_of_solution` (Terminate Cancelled) runs after `Get_Flow`
    [Failed]: the run ends Cancelled, not Succeeded."""
    found = branches(SESSION_TRACE)
    assert list(found) == ["Get_Flow"]
    branch = found["Get_Flow"]
    assert branch["catch_action"] == "Cancel_Run_-_Flow_not_part_of_solution"
    assert branch["kind"] == "catch"
    assert branch["reports_failure"]
    assert branch["ends_failed"]
    assert not branch["success_on_failure"]
    assert branch["how"] == "Terminate Cancelled"


def test_nested_logging_catches_are_answered_after_their_container() -> None:
    """microsoft__powercat-business-approvals-kit/BusinessApprovalKit/SolutionPackage/src/
    Workflows/BACoreChildGetDynamicApprover-DCB75FEF-35D6-EC11-A7B5-000D3AF46350.json

    In `If_Manager_Lookup`, `Log_Exception_getting_manager_for_approver` and
    `Log_Exception_getting_approver_from_O365_users` (child-flow calls that log) run after
    `Get_manager_by_UPN` / `Get_user_profile_(V2)` [Failed]: catches that write the failure.
    `Respond_to_a_PowerApp_or_flow` runs after `If_approver_UPN_has_value` [Succeeded,
    Failed, TimedOut], so the parent gets an answer on every path."""
    rows = actions(DYNAMIC_APPROVER)
    logs = [r for r in rows if str(r["action_name"]).startswith("Log_Exception")]
    assert {(r["type"], r["is_external_call"], r["is_effect"]) for r in logs} == {
        ("Workflow", True, True)
    }
    found = branches(DYNAMIC_APPROVER)
    assert found.keys() == {"Get_manager_by_UPN", "Get_user_profile_(V2)"}
    assert found["Get_manager_by_UPN"]["catch_action"] == (
        "Log_Exception_getting_manager_for_approver"
    )
    assert found["Get_user_profile_(V2)"]["catch_action"] == (
        "Log_Exception_getting_approver_from_O365_users"
    )
    for branch in found.values():
        assert branch["kind"] == "catch"
        assert branch["reports_failure"]
        assert not branch["answers"]  # the Response is outside the catch's container
        assert not branch["success_on_failure"]
    paths = response_paths(rows)
    assert paths.responses == 1
    assert paths.silent_paths == ()
    assert paths.success_on_failure == ()
    assert paths.silent_catches == ()


def test_a_data_catch_carried_to_a_response_status_field_reports() -> None:
    """pnp__powerplatform-samples/samples/utility-flow-get-sharepoint-info-from-environment-
    variables/sourcecode/ParseListDataSourceInfo/src/Workflows/
    GetDataSourceListInfo-031ABDA2-427B-EF11-AC20-002248617A98.json

    `Scope:_Error_Handling_List_Information` and `Scope:_Error_Handling_Site_Information`
    run after their scope [Failed] and only collect the errors into variables (Filter array,
    Parse JSON, Select, Set variable); `Scope:_parse_errors` turns them into `sErrorMessage`
    and `bSuccess`, which `Respond_to_a_Power_App_or_flow` returns as `error_message` and
    `success`: a 200 whose body tells the app the work failed."""
    found = branches(LIST_INFO)
    assert found.keys() == {"Scope:_list_information", "Scope:_site_information"}
    for branch in found.values():
        assert branch["kind"] == "catch"
        assert branch["members"] == 5
        assert branch["reports_failure"]
        assert branch["answers"]
        assert not branch["ends_failed"]
        assert not branch["success_on_failure"]
        assert branch["how"] == "answers 'Respond to a Power App or flow' (200)"
    paths = response_paths(actions(LIST_INFO))
    assert paths.responses == 1
    assert paths.silent_paths == ()
    assert paths.success_on_failure == ()
    assert paths.silent_catches == ()
