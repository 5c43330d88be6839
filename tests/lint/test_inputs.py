"""The lint input reader: every shape into records, locations, problems and limits."""

from __future__ import annotations

import builtins
import gc
import io
import json
import os
import shutil
import tempfile
import time
import tracemalloc
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from defusedxml import ElementTree as DefusedElementTree

from auditor.errors import UsageError
from auditor.lint import files, limits, solution, xml_records, zips
from auditor.lint.inputs import LintInputs, Location, line_of_key, lines_of_keys, read_inputs

FIXTURES = Path(__file__).parent / "fixtures"
UNPACKED = FIXTURES / "unpacked"
ACCOUNT_SYNC = "3f2a9c1e-5b7d-ee11-8179-000d3a1b2c3d"
CONTACT_SYNC = "7a1b2c3d-4e5f-ee11-8179-000d3a1b2c3d"
CHILD = "c1d2e3f4-0a1b-ee11-8179-000d3a1b2c3d"
ORDERS = "9b8a7c6d-1e2f-ee11-8179-000d3a1b2c3d"
UNFILTERED_STEP = "5d1f7a2b-8c3e-ee11-8179-000d3a1b2c3d"
FILTERED_STEP = "6e2a8b3c-9d4f-ee11-8179-000d3a1b2c3d"
CUSTOM_API_STEP = "7f3b9c4d-0e5a-ee11-8179-000d3a1b2c3d"
INVOICES = "5c6d7e8f-9a0b-ee11-8179-000d3a1b2c3d"
LEGACY = "2b8f6c1e-4d3a-4f5b-9c7e-1a2b3c4d5e6f"
ORDERS_FILE = "src/Workflows/ContosoOrderProcessing-9B8A7C6D-1E2F-EE11-8179-000D3A1B2C3D.json"
ZIP_FLOW = "Workflows/ContosoInvoiceSync-5C6D7E8F-9A0B-EE11-8179-000D3A1B2C3D.json"


def zip_folder(folder: Path, target: Path, extra: dict[str, bytes] | None = None) -> Path:
    """A zip of `folder`'s files (as Dataverse exports it: members at the root), plus `extra`."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(folder).as_posix())
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return target


def by_id(records: Any, key: str) -> dict[str, Any]:
    return {getattr(record, key): record for record in records}


def line_of(path: Path, needle: str) -> int:
    """1-based line of the first line of `path` containing `needle`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(number for number, text in enumerate(lines, 1) if needle in text)


@pytest.fixture(scope="module")
def unpacked() -> LintInputs:
    return read_inputs([UNPACKED])


# The unpacked solution folder ---------------------------------------------------------------


def test_unpacked_flows_take_id_and_name_from_their_data_xml(unpacked: LintInputs) -> None:
    flows = by_id(unpacked.flows, "flow_id")
    assert set(flows) == {ACCOUNT_SYNC, CONTACT_SYNC, CHILD, ORDERS}
    assert flows[CHILD].name == "Contoso Child - Log Error"
    assert flows[ORDERS].name == "Contoso Order Processing"
    source = UNPACKED / "src/Workflows/ContosoAccountSync-3F2A9C1E-5B7D-EE11-8179-000D3A1B2C3D.json"
    assert flows[ACCOUNT_SYNC].text == source.read_text(encoding="utf-8")
    assert flows[ACCOUNT_SYNC].location == Location(source.as_posix())
    assert unpacked.problems == ()


def test_unpacked_flows_keep_the_shapes_the_checks_look_for(unpacked: LintInputs) -> None:
    """The fixture flows hold what the checks judge (asserted here so a fixture edit that
    drops one is caught where the fixture lives)."""
    flows = {f.flow_id: json.loads(f.text)["properties"]["definition"] for f in unpacked.flows}
    unfiltered = flows[ACCOUNT_SYNC]["triggers"]["When_an_account_is_modified"]
    assert unfiltered["inputs"]["parameters"]["subscriptionRequest/message"] == 3
    assert "subscriptionRequest/filteringattributes" not in unfiltered["inputs"]["parameters"]
    assert "conditions" not in unfiltered
    filtered = flows[CONTACT_SYNC]["triggers"]["When_a_contact_email_or_phone_changes"]
    assert filtered["inputs"]["parameters"]["subscriptionRequest/filteringattributes"]
    assert filtered["conditions"][0]["expression"].startswith("@")
    child = flows[CHILD]
    assert child["triggers"]["manual"]["kind"] == "Button"
    assert child["actions"]["Compose_the_failure"]["runAfter"] == {
        "Add_a_new_error_log_row": ["FAILED"]
    }
    assert child["actions"]["Respond_to_a_PowerApp_or_flow"]["runAfter"] == {
        "Add_a_new_error_log_row": ["SUCCEEDED"]
    }
    catch = flows[ORDERS]["actions"]["Catch"]
    assert catch["runAfter"] == {"Try": ["Failed", "TimedOut"]}
    assert catch["actions"]["Terminate"]["inputs"]["runStatus"] == "Failed"
    call = catch["actions"]["Run_a_Child_Flow"]
    assert call["type"] == "Workflow"
    assert call["inputs"]["host"]["workflowReferenceName"] == CHILD


def test_steps_get_message_names_from_ids_and_from_the_step_name(unpacked: LintInputs) -> None:
    steps = by_id(unpacked.steps, "stepid")
    assert set(steps) == {UNFILTERED_STEP, FILTERED_STEP, CUSTOM_API_STEP}
    unfiltered = steps[UNFILTERED_STEP]
    assert (unfiltered.message_name, unfiltered.primary_entity) == ("Update", "account")
    assert unfiltered.filteringattributes is None  # <FilteringAttributes></FilteringAttributes>
    assert (unfiltered.stage, unfiltered.mode, unfiltered.rank) == (40, 1, 1)
    assert unfiltered.asyncautodelete is True
    assert unfiltered.plugintype_name == "Contoso.Plugins.AccountPlugin"
    # Upper-case id in braces, message id in braces: both normalised.
    filtered = steps[FILTERED_STEP]
    assert filtered.message_name == "Update"
    assert filtered.filteringattributes == "emailaddress1,telephone1"
    assert (filtered.stage, filtered.mode, filtered.asyncautodelete) == (20, 0, False)
    # A custom API's message id is not a system message: the name says which message and table.
    custom = steps[CUSTOM_API_STEP]
    assert (custom.message_name, custom.primary_entity) == ("contoso_Recalculate", "quote")


def test_a_step_location_is_the_line_of_its_start_tag(unpacked: LintInputs) -> None:
    steps = by_id(unpacked.steps, "stepid")
    for step_id in (UNFILTERED_STEP, CUSTOM_API_STEP):
        path = UNPACKED / f"src/SdkMessageProcessingSteps/{{{step_id}}}.xml"
        assert steps[step_id].location == Location(
            path.as_posix(), None, line_of(path, "<SdkMessageProcessingStep ")
        )
    assert steps[CUSTOM_API_STEP].location.line == 3  # after a comment line


def test_a_step_in_its_own_file_and_in_customizations_is_one_step(unpacked: LintInputs) -> None:
    customizations = (UNPACKED / "src/Other/Customizations.xml").read_text(encoding="utf-8")
    assert UNFILTERED_STEP in customizations
    (step,) = [s for s in unpacked.steps if s.stepid == UNFILTERED_STEP]
    assert step.location.file.endswith(f"SdkMessageProcessingSteps/{{{UNFILTERED_STEP}}}.xml")


def test_classic_workflows_keep_their_update_trigger_list_as_written(
    unpacked: LintInputs,
) -> None:
    workflows = by_id(unpacked.workflows, "name")
    listed = workflows["Contoso - Notify on account status change"]
    assert listed.trigger_on_update_attributes == "statecode,statuscode"
    assert (listed.mode, listed.trigger_on_create, listed.trigger_on_delete) == (0, False, False)
    assert listed.primary_entity == "account"
    assert listed.workflowid == "a1b2c3d4-1111-ee11-8179-000d3a1b2c3d"
    customizations = UNPACKED / "src/Other/Customizations.xml"
    assert listed.location == Location(
        customizations.as_posix(), None, line_of(customizations, listed.workflowid)
    )
    unlisted = workflows["Contoso - Recalculate order totals"]
    assert unlisted.trigger_on_update_attributes is None  # the element is absent
    assert (unlisted.mode, unlisted.trigger_on_create) == (1, True)
    # pac unpack's own file for a classic workflow: an empty element is "" (present, empty).
    escalation = workflows["Contoso - Case escalation"]
    assert escalation.trigger_on_update_attributes == ""
    assert escalation.location.file.endswith(".xaml.data.xml")
    assert escalation.location.line == 2


def test_locations_are_the_path_as_given_joined_with_the_path_below(tmp_path: Path) -> None:
    shutil.copytree(UNPACKED, tmp_path / "solutions" / "Core")  # the tests run in tmp_path
    found = read_inputs([Path("solutions/Core")])
    flow = by_id(found.flows, "flow_id")[ORDERS]
    assert flow.location == Location(f"solutions/Core/{ORDERS_FILE}")
    step = by_id(found.steps, "stepid")[FILTERED_STEP]
    assert (
        step.location.file
        == f"solutions/Core/src/SdkMessageProcessingSteps/{{{FILTERED_STEP}}}.xml"
    )


def test_a_workflows_folder_given_alone_is_read() -> None:
    found = read_inputs([UNPACKED / "src" / "Workflows"])
    assert {f.flow_id for f in found.flows} == {ACCOUNT_SYNC, CONTACT_SYNC, CHILD, ORDERS}


def test_build_output_and_hidden_folders_are_not_searched(tmp_path: Path) -> None:
    shutil.copytree(UNPACKED, tmp_path / "project")
    shutil.copytree(UNPACKED / "src", tmp_path / "project" / "obj" / "Debug" / "Metadata")
    shutil.copytree(UNPACKED / "src", tmp_path / "project" / ".git" / "src")
    found = read_inputs([Path("project")])
    assert all(
        "/obj/" not in f.location.file and ".git" not in f.location.file for f in found.flows
    )
    assert len(found.flows) == 4


def test_reading_is_reproducible_and_sorted(unpacked: LintInputs) -> None:
    assert read_inputs([UNPACKED]) == unpacked
    places = [(f.location.file, f.flow_id) for f in unpacked.flows]
    assert places == sorted(places)
    assert read_inputs([UNPACKED, UNPACKED]).flows == unpacked.flows  # one flow per id


# The solution zip -----------------------------------------------------------------------------


def test_a_solution_zip_is_read_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = zip_folder(FIXTURES / "solution_zip", tmp_path / "ContosoBilling_2_1_0_0_managed.zip")
    before = sorted(tmp_path.rglob("*"))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the reader wrote to disk")

    real_open = builtins.open

    def read_only_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if any(flag in mode for flag in "wax+"):
            refuse()
        return real_open(file, mode, *args, **kwargs)

    for name in ("mkstemp", "mkdtemp", "NamedTemporaryFile", "TemporaryDirectory"):
        monkeypatch.setattr(tempfile, name, refuse)
    monkeypatch.setattr(zipfile.ZipFile, "extract", refuse)
    monkeypatch.setattr(zipfile.ZipFile, "extractall", refuse)
    monkeypatch.setattr(builtins, "open", read_only_open)
    monkeypatch.setattr(io, "open", read_only_open)
    found = read_inputs([Path(archive.name)])
    monkeypatch.undo()
    assert sorted(tmp_path.rglob("*")) == before
    assert [f.flow_id for f in found.flows] == [INVOICES]


def test_a_solution_zip_yields_flows_steps_and_workflows(tmp_path: Path) -> None:
    archive = zip_folder(FIXTURES / "solution_zip", tmp_path / "billing.zip")
    found = read_inputs([Path("billing.zip")])
    (flow,) = found.flows
    member = "Workflows/ContosoInvoiceSync-5C6D7E8F-9A0B-EE11-8179-000D3A1B2C3D.json"
    assert (flow.flow_id, flow.name) == (INVOICES, "Contoso Invoice Sync")  # customizations.xml
    assert flow.location == Location("billing.zip", member, None)
    assert flow.text == (FIXTURES / "solution_zip" / member).read_text(encoding="utf-8")
    (step,) = found.steps
    assert (step.message_name, step.primary_entity) == ("Update", "invoice")
    assert step.filteringattributes is None  # no <FilteringAttributes> element at all
    assert step.location == Location("billing.zip", "customizations.xml", None)
    (workflow,) = found.workflows
    assert workflow.trigger_on_update_attributes == "duedate"
    assert found.problems == ()
    assert found.files == 2  # customizations.xml and the flow; solution.xml is not needed
    assert archive.exists()


def test_the_unzipped_export_reads_like_the_zip(tmp_path: Path) -> None:
    zipped = read_inputs([zip_folder(FIXTURES / "solution_zip", tmp_path / "billing.zip")])
    folder = read_inputs([FIXTURES / "solution_zip"])
    assert [f.flow_id for f in folder.flows] == [f.flow_id for f in zipped.flows]
    assert [(s.stepid, s.message_name) for s in folder.steps] == [
        (s.stepid, s.message_name) for s in zipped.steps
    ]
    customizations = FIXTURES / "solution_zip" / "customizations.xml"
    assert folder.steps[0].location.line == line_of(customizations, "<SdkMessageProcessingStep ")


# Legacy packages and single files -------------------------------------------------------------


def test_a_legacy_package_folder_and_zip(tmp_path: Path) -> None:
    folder = read_inputs([FIXTURES / "legacy_package"])
    zipped = read_inputs([zip_folder(FIXTURES / "legacy_package", tmp_path / "package.zip")])
    for found in (folder, zipped):
        (flow,) = found.flows
        assert (flow.flow_id, flow.name) == (LEGACY, "Notify on flagged email")
        assert json.loads(flow.text)["type"] == "Microsoft.Flow/flows"
    assert zipped.flows[0].location.member == f"Microsoft.Flow/flows/{LEGACY}/definition.json"


def test_single_flow_files_clientdata_and_bare(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "single", tmp_path / "flows")
    found = read_inputs([Path("flows/clientdata_flow.json"), Path("flows/bare_definition.json")])
    flows = by_id(found.flows, "name")
    assert set(flows) == {"clientdata_flow", "bare_definition"}
    bare = flows["bare_definition"]
    assert bare.location == Location("flows/bare_definition.json")
    assert bare.flow_id == "flows/bare_definition.json"  # no workflow GUID: the path
    assert "triggers" in json.loads(bare.text)


def test_a_single_solution_flow_file_keeps_its_guid_and_data_xml_name() -> None:
    path = UNPACKED / "src/Workflows/ContosoChildLogError-C1D2E3F4-0A1B-EE11-8179-000D3A1B2C3D.json"
    (flow,) = read_inputs([path]).flows
    assert (flow.flow_id, flow.name) == (CHILD, "Contoso Child - Log Error")


def test_a_byte_order_mark_is_stripped(tmp_path: Path) -> None:
    text = (FIXTURES / "single" / "bare_definition.json").read_text(encoding="utf-8")
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + text.encode())
    (flow,) = read_inputs([Path("bom.json")]).flows
    assert flow.text == text


# Broken inputs ----------------------------------------------------------------------------------


def test_invalid_flow_json_is_a_flow_for_the_analysis_not_a_problem() -> None:
    found = read_inputs([FIXTURES / "broken" / "invalid_json"])
    (flow,) = found.flows
    assert flow.flow_id == "8e9f0a1b-2c3d-ee11-8179-000d3a1b2c3d"
    assert flow.name == "ContosoBroken"  # no .data.xml: the file name without its GUID
    with pytest.raises(json.JSONDecodeError):
        json.loads(flow.text)
    assert found.problems == ()


def test_step_xml_that_does_not_parse_is_a_problem_naming_the_file() -> None:
    found = read_inputs([FIXTURES / "broken" / "bad_step_xml"])
    assert found.steps == ()
    (problem,) = found.problems
    assert problem.kind == "step"
    assert problem.location.file.endswith("{9c0d1e2f-3a4b-ee11-8179-000d3a1b2c3d}.xml")
    assert problem.message.startswith("XML does not parse: mismatched tag: line 8")


def test_a_zip_naming_a_missing_flow_file_is_a_problem(tmp_path: Path) -> None:
    archive = zip_folder(FIXTURES / "broken" / "zip_missing_member", tmp_path / "partial.zip")
    found = read_inputs([archive])
    assert found.flows == ()
    (problem,) = found.problems
    assert problem.location == Location(archive.as_posix(), "customizations.xml", None)
    assert problem.kind == "flow"
    assert problem.message == (
        "customizations.xml names Workflows/ContosoLostFlow-F6A7B8C9-6666-EE11-8179-"
        "000D3A1B2C3D.json, which is not in the zip"
    )


def test_a_folder_naming_a_missing_flow_file_is_a_problem(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "broken" / "zip_missing_member", tmp_path / "partial")
    (problem,) = read_inputs([Path("partial")]).problems
    assert problem.location == Location("partial/customizations.xml", None, 3)
    assert problem.message.endswith("json, which does not exist")


def test_a_step_without_its_id_is_a_problem(tmp_path: Path) -> None:
    steps = tmp_path / "SdkMessageProcessingSteps"
    steps.mkdir()
    (steps / "step.xml").write_text(
        '<SdkMessageProcessingStep Name="Plugins.AccountPlugin: Update of account">\n'
        "  <Stage>40</Stage>\n</SdkMessageProcessingStep>\n",
        encoding="utf-8",
    )
    found = read_inputs([Path("SdkMessageProcessingSteps")])
    (problem,) = found.problems
    assert problem.location == Location("SdkMessageProcessingSteps/step.xml")
    assert "has no SdkMessageProcessingStepId" in problem.message


def test_the_step_name_gives_message_and_table_when_the_file_lacks_them(tmp_path: Path) -> None:
    steps = tmp_path / "SdkMessageProcessingSteps"
    steps.mkdir()
    (steps / "step.xml").write_text(
        '<SdkMessageProcessingStep Name="Plugins.AccountPlugin: Update of account" '
        'SdkMessageProcessingStepId="{0A0B0C0D-1111-EE11-8179-000D3A1B2C3D}">\n'
        "  <SdkMessageId>00000000-1111-2222-3333-444444444444</SdkMessageId>\n"
        "</SdkMessageProcessingStep>\n",
        encoding="utf-8",
    )
    (step,) = read_inputs([tmp_path]).steps
    assert (step.message_name, step.primary_entity) == ("Update", "account")
    assert step.stepid == "0a0b0c0d-1111-ee11-8179-000d3a1b2c3d"


@pytest.mark.parametrize(
    ("message_id", "name"),
    [
        ("9ebdbb1b-ea3e-db11-86a7-000a3a5473e8", "Create"),
        ("{A1BDBB1B-EA3E-DB11-86A7-000A3A5473E8}", "Delete"),
        ("8CBDBB1B-EA3E-DB11-86A7-000A3A5473E8", "Assign"),
        ("1dbebb1b-ea3e-db11-86a7-000a3a5473e8", "SetStateDynamicEntity"),
        ("03bebb1b-ea3e-db11-86a7-000a3a5473e8", "RetrieveMultiple"),
    ],
)
def test_well_known_message_ids_with_or_without_braces(
    tmp_path: Path, message_id: str, name: str
) -> None:
    steps = tmp_path / "SdkMessageProcessingSteps"
    steps.mkdir()
    (steps / "step.xml").write_text(
        '<SdkMessageProcessingStep Name="A custom name" '
        'SdkMessageProcessingStepId="{0a0b0c0d-2222-ee11-8179-000d3a1b2c3d}">'
        f"<SdkMessageId>{message_id}</SdkMessageId></SdkMessageProcessingStep>",
        encoding="utf-8",
    )
    (step,) = read_inputs([tmp_path]).steps
    assert step.message_name == name
    assert step.primary_entity is None


def test_xml_entities_are_refused_not_expanded(tmp_path: Path) -> None:
    other = tmp_path / "Other"
    other.mkdir()
    laughs = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    (other / "Customizations.xml").write_text(
        f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY l0 "lol">{laughs}]>'
        "<ImportExportXml><Workflows>&l9;</Workflows></ImportExportXml>",
        encoding="utf-8",
    )
    (problem,) = read_inputs([Path(".")]).problems  # the tests run in tmp_path
    assert (problem.kind, problem.location.file) == ("solution", "Other/Customizations.xml")
    assert problem.message.startswith("XML refused: DTDForbidden")


def test_a_flow_file_that_is_not_utf8_is_a_problem(tmp_path: Path) -> None:
    workflows = tmp_path / "Workflows"
    workflows.mkdir()
    (workflows / "Latin1-0A0B0C0D-3333-EE11-8179-000D3A1B2C3D.json").write_bytes(b'{"caf\xe9": 1}')
    found = read_inputs([tmp_path])
    assert found.flows == ()
    (problem,) = found.problems
    assert (problem.kind, problem.message) == ("flow", "not UTF-8 text (byte 5)")


def test_a_damaged_zip_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "export.zip").write_bytes(b"PK\x03\x04 this is not a zip")
    (problem,) = read_inputs([Path("export.zip")]).problems
    assert problem.location == Location("export.zip")
    assert problem.kind == "solution"
    assert problem.message.startswith("not a readable zip")


# Zip-bomb limits --------------------------------------------------------------------------------


def test_a_member_over_the_limit_is_a_problem_and_the_rest_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_FLOW_BYTES", 64 * 1024)
    bomb = b'{"definition": {"actions": {}}, "padding": "' + b" " * (4 * 1024 * 1024) + b'"}'
    name = "Workflows/Bomb-0A0B0C0D-4444-EE11-8179-000D3A1B2C3D.json"
    archive = zip_folder(FIXTURES / "solution_zip", tmp_path / "bomb.zip", {name: bomb})
    assert archive.stat().st_size < 64 * 1024  # small on disk, 4 MB inflated
    found = read_inputs([archive])
    assert [f.flow_id for f in found.flows] == [INVOICES]
    (problem,) = found.problems
    assert (problem.location.member, problem.kind) == (name, "flow")
    assert problem.message == "not read: inflates to 4 MB, over the 64 KB limit"


def test_a_member_whose_header_understates_its_size_is_a_problem(tmp_path: Path) -> None:
    name = "Workflows/Liar-0A0B0C0D-5555-EE11-8179-000D3A1B2C3D.json"
    archive = zip_folder(FIXTURES / "solution_zip", tmp_path / "liar.zip", {name: b" " * 100_000})
    data = bytearray(archive.read_bytes())
    # (signature, offset of the uncompressed size, offset of the name) of the local header and
    # of the central directory entry: both now say 1,000 bytes.
    for signature, size_at, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        start = data.find(signature)
        while start != -1:
            if data[start + name_at : start + name_at + len(name)] == name.encode():
                data[start + size_at : start + size_at + 4] = (1000).to_bytes(4, "little")
            start = data.find(signature, start + 4)
    archive.write_bytes(bytes(data))
    found = read_inputs([archive])
    assert [f.flow_id for f in found.flows] == [INVOICES]
    (problem,) = found.problems
    assert problem.location.member == name
    assert problem.message.startswith("cannot be read from the zip: Bad CRC-32")


def test_members_past_the_run_budget_are_not_read_and_the_rest_is_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    definition = FIXTURES / "legacy_package/Microsoft.Flow/flows" / LEGACY / "definition.json"
    size = definition.stat().st_size
    monkeypatch.setattr(limits, "MAX_RUN_BYTES", 2 * size + size // 2)
    extra = {
        f"Microsoft.Flow/flows/{n}0000000-0000-4000-8000-000000000000/definition.json": (
            definition.read_bytes()
        )
        for n in (1, 2)
    }
    archive = zip_folder(FIXTURES / "legacy_package", tmp_path / "package.zip", extra)
    found = read_inputs([archive])
    assert len(found.flows) == 2
    (problem,) = found.problems
    stopped = f"Microsoft.Flow/flows/{LEGACY}/definition.json"
    assert problem.location == Location(archive.as_posix(), stopped)
    assert problem.message == (
        f"lint budget reached (over {limits.format_size(2 * size + size // 2)} read in all): "
        f"reading stopped at {archive.as_posix()}!{stopped}; 1 file(s) left out"
    )
    assert found.unread == problem.message + "; the report covers what was read"


def test_a_file_over_the_limit_in_a_folder_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_MEMBER_BYTES", 1024)
    monkeypatch.setattr(limits, "MAX_FLOW_BYTES", 1024)
    shutil.copytree(FIXTURES / "solution_zip", tmp_path / "export")
    found = read_inputs([Path("export")])
    assert {p.location.file for p in found.problems} == {
        "export/customizations.xml",
        "export/Workflows/ContosoInvoiceSync-5C6D7E8F-9A0B-EE11-8179-000D3A1B2C3D.json",
    }


# Usage errors -----------------------------------------------------------------------------------


def _missing(root: Path) -> Path:
    return root / "missing"


def _text_file(root: Path) -> Path:
    (root / "notes.txt").write_text("hello", encoding="utf-8")
    return root / "notes.txt"


def _folder_without_solution(root: Path) -> Path:
    (root / "docs").mkdir()
    (root / "docs" / "readme.md").write_text("# Notes", encoding="utf-8")
    return root / "docs"


def _json_that_is_no_flow(root: Path) -> Path:
    (root / "package.json").write_text('{"name": "x"}', encoding="utf-8")
    return root / "package.json"


def _zip_without_solution(root: Path) -> Path:
    with zipfile.ZipFile(root / "other.zip", "w") as archive:
        archive.writestr("readme.md", "# Notes")
    return root / "other.zip"


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (_missing, "no such file or folder"),
        (_text_file, "neither a folder, a .zip nor a .json"),
        (_folder_without_solution, "holds no solution files"),
        (_json_that_is_no_flow, "no flow definition"),
        (_zip_without_solution, "holds no solution files"),
    ],
)
def test_a_path_that_is_none_of_the_shapes_is_a_usage_error(
    tmp_path: Path, make: Callable[[Path], Path], says: str
) -> None:
    path = make(tmp_path)
    with pytest.raises(UsageError) as raised:
        read_inputs([path])
    assert raised.value.exit_code == 2
    assert path.as_posix() in raised.value.message
    assert says in raised.value.message
    assert "pac solution unpack" in raised.value.hint


def test_no_path_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        read_inputs([])


# line_of_key ------------------------------------------------------------------------------------


def test_line_of_key_finds_the_definition_not_the_run_after_reference(
    unpacked: LintInputs,
) -> None:
    path = UNPACKED / ORDERS_FILE
    text = by_id(unpacked.flows, "flow_id")[ORDERS].text
    definition = line_of_key(text, "Try")
    assert definition == line_of(path, '"Try": {')
    assert definition != line_of(path, '"Try": [')
    child_call = line_of_key(text, "Run_a_Child_Flow")
    assert child_call == line_of(path, '"Run_a_Child_Flow": {')
    assert child_call != line_of(path, '"Run_a_Child_Flow": [')
    assert line_of_key(text, "When_an_order_is_added") == line_of(path, "When_an_order_is_added")
    assert line_of_key(text, "No_such_action") is None


def test_line_of_key_prefers_an_action_to_a_schema_property_of_that_name() -> None:
    text = (
        '{\n  "triggers": {\n    "manual": {\n      "inputs": {\n        "schema": {\n'
        '          "properties": {\n            "Response": {\n              "type": "string"\n'
        '            }\n          }\n        }\n      }\n    }\n  },\n  "actions": {\n'
        '    "Response": {\n      "type": "Response"\n    }\n  }\n}\n'
    )
    assert line_of_key(text, "Response") == 16
    assert line_of_key(text, "schema") == 5  # not an action: any member of that name


def test_line_of_key_decodes_json_escapes() -> None:
    text = (
        '{\n  "actions": {\n    "Caf\\u00e9_\\"quoted\\"": {\n      "inputs": "\\"Next\\": {"\n'
        '    },\n    "Next": {\n      "runAfter": {\n        "Caf\\u00e9_\\"quoted\\"": [\n'
        '          "Succeeded"\n        ]\n      }\n    }\n  }\n}\n'
    )
    assert json.loads(text)["actions"]['Café_"quoted"']["inputs"] == '"Next": {'
    assert line_of_key(text, 'Café_"quoted"') == 3
    assert line_of_key(text, "Next") == 6  # not the text inside the string on line 4
    raw = '{\n  "actions": {\n    "Créer_une_ligne": {}\n  }\n}'
    assert line_of_key(raw, "Créer_une_ligne") == 3


def test_line_of_key_survives_text_that_is_not_json() -> None:
    assert line_of_key('{"actions": {"A": {"runAfter": {', "A") == 1
    assert line_of_key("not json at all", "A") is None
    assert line_of_key("", "A") is None
    assert line_of_key('"\\"' * 100_000, "A") is None  # unterminated: one pass, not n²


# Performance ------------------------------------------------------------------------------------


def test_a_hundred_realistic_flow_files_are_read_well_under_a_second(tmp_path: Path) -> None:
    template = json.loads((UNPACKED / ORDERS_FILE).read_text(encoding="utf-8"))
    definition = template["properties"]["definition"]
    scope = definition["actions"]["Try"]
    workflows = tmp_path / "big" / "Workflows"
    workflows.mkdir(parents=True)
    for n in range(100):
        scopes = {f"Scope_{i}": {**scope, "runAfter": {}} for i in range(15 + n * 57 // 99)}
        definition["actions"] = {**scopes, "Terminate": {"type": "Terminate", "runAfter": {}}}
        name = f"Flow{n}-{n:08x}-1111-ee11-8179-000d3a1b2c3d.json"
        (workflows / name).write_text(json.dumps(template, indent=2), encoding="utf-8")
    sizes = sorted(p.stat().st_size for p in workflows.iterdir())
    assert sizes[0] > 30_000
    assert sizes[-1] < 160_000  # 30 KB to 150 KB, like real exports
    started = time.perf_counter()
    found = read_inputs([tmp_path / "big"])
    elapsed = time.perf_counter() - started
    assert len(found.flows) == 100
    assert elapsed < 1.0, f"{elapsed:.2f}s"
    started = time.perf_counter()
    assert all(line_of_key(flow.text, "Terminate") for flow in found.flows)
    assert time.perf_counter() - started < 2.0


def test_utf16_exports_are_read_and_broken_utf16_is_named(tmp_path: Path) -> None:
    """Older exports are UTF-16 with a byte-order mark: tests/corpus/Grant-Archibald-MS__
    coe-starter-kit/CenterofExcellenceInnovationBacklog/SolutionPackage/Workflows/
    Addpainpoints-7F166395-3204-EB11-A813-000D3A31CB42.json (CoE Starter Kit, 2021) is read
    like a UTF-8 file; a UTF-16 file cut in the middle of a character is a problem naming it."""
    real = (
        Path(__file__).parents[1]
        / "corpus/Grant-Archibald-MS__coe-starter-kit/CenterofExcellenceInnovationBacklog"
        / "SolutionPackage/Workflows/Addpainpoints-7F166395-3204-EB11-A813-000D3A31CB42.json"
    )
    assert real.read_bytes()[:2] == b"\xff\xfe"
    [flow] = read_inputs([real]).flows
    assert flow.flow_id == "7f166395-3204-eb11-a813-000d3a31cb42"
    assert json.loads(flow.text)["properties"]["definition"]["triggers"]
    broken = tmp_path / "Workflows" / "Cut-7F166395-3204-EB11-A813-000D3A31CB43.json"
    broken.parent.mkdir()
    broken.write_bytes(b"\xff\xfe" + '{"properties": {}}'.encode("utf-16-le") + b"\x00")
    found = read_inputs([broken])
    assert [p.message for p in found.problems] == ["not UTF-16 text (byte 38)"]


# Reading only what was asked for ----------------------------------------------------------------


def _solution_folder(root: Path) -> Path:
    shutil.copytree(FIXTURES / "solution_zip", root / "export")
    return root / "export"


def test_links_and_special_files_below_a_folder_are_problems_and_never_read(
    tmp_path: Path,
) -> None:
    folder = _solution_folder(tmp_path)
    (tmp_path / "secret.txt").write_text('{"definition": {}}', encoding="utf-8")
    os.symlink(tmp_path / "secret.txt", folder / "Workflows" / "Linked.json")
    os.symlink(folder / "customizations.xml", folder / "Workflows" / "Inside.json")  # in PATH
    os.mkfifo(folder / "Workflows" / "Pipe.json")
    os.symlink("/etc/passwd", folder / "README.md")  # not a file the reader reads: ignored
    found = read_inputs([Path("export")])
    assert [f.flow_id for f in found.flows] == [INVOICES]
    refused = "lint reads regular files only, and follows no link it was not given"
    assert {(p.location.file, p.kind, p.message) for p in found.problems} == {
        ("export/Workflows/Inside.json", "flow", f"not read: a symbolic link; {refused}"),
        ("export/Workflows/Linked.json", "flow", f"not read: a symbolic link; {refused}"),
        ("export/Workflows/Pipe.json", "flow", f"not read: a FIFO (named pipe); {refused}"),
    }


def test_a_file_or_folder_swapped_for_a_link_after_the_listing_is_not_followed(
    tmp_path: Path,
) -> None:
    """Each file is opened folder by folder without following a link, so a swap between the
    listing and the read is refused too."""
    folder = _solution_folder(tmp_path)
    found = limits.Found()
    listed = files.Folder.of(folder, "export", found)
    (folder / "customizations.xml").rename(tmp_path / "customizations.xml")
    os.symlink(tmp_path / "customizations.xml", folder / "customizations.xml")
    (folder / "Workflows").rename(tmp_path / "Workflows")
    os.symlink(tmp_path / "Workflows", folder / "Workflows")
    solution.read_source(listed, found)
    result = found.finish()
    assert (result.flows, result.steps, result.workflows) == ((), (), ())
    assert {p.location.file for p in result.problems} == {
        "export/customizations.xml",
        f"export/{ZIP_FLOW}",
    }
    assert all("not read: a symbolic link" in p.message for p in result.problems)


def test_a_path_named_as_a_link_is_followed_to_a_folder_or_a_file(tmp_path: Path) -> None:
    os.symlink(UNPACKED, tmp_path / "linked")
    flow = UNPACKED / ORDERS_FILE
    os.symlink(flow, tmp_path / "orders.json")
    assert {f.flow_id for f in read_inputs([Path("linked")]).flows} == {
        ACCOUNT_SYNC,
        CONTACT_SYNC,
        CHILD,
        ORDERS,
    }
    (single,) = read_inputs([Path("orders.json")]).flows
    assert single.text == flow.read_text(encoding="utf-8")


@pytest.mark.parametrize("target", ["fifo", "/dev/zero", "/dev/null"])
def test_a_path_that_is_not_a_file_or_folder_is_a_usage_error(tmp_path: Path, target: str) -> None:
    if target == "fifo":
        os.mkfifo(tmp_path / "export.zip")
    else:
        os.symlink(target, tmp_path / "export.zip")
    with pytest.raises(UsageError) as raised:
        read_inputs([Path("export.zip")])
    assert raised.value.message.endswith(", not a file or folder")
    assert raised.value.message.startswith("export.zip: is a ")


def test_the_same_path_named_twice_is_read_once(tmp_path: Path) -> None:
    archive = zip_folder(FIXTURES / "solution_zip", tmp_path / "billing.zip")
    once = read_inputs([archive])
    thrice = read_inputs([archive, Path("billing.zip"), Path("./billing.zip")])
    assert (thrice.flows, thrice.files) == (once.flows, once.files)


# Zips -------------------------------------------------------------------------------------------


def _zip_with(tmp_path: Path, *extra: tuple[str, bytes]) -> Path:
    """The solution zip fixture plus members written as given (names may repeat)."""
    target = zip_folder(FIXTURES / "solution_zip", tmp_path / "dup.zip")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of a name it writes twice
        with zipfile.ZipFile(target, "a") as archive:
            for name, data in extra:
                archive.writestr(name, data)
    return target


@pytest.mark.parametrize(
    ("second", "message"),
    [
        (ZIP_FLOW, f"the zip holds {ZIP_FLOW} twice;"),
        (ZIP_FLOW.replace("/", "\\"), f"the zip holds {ZIP_FLOW} twice;"),
        (ZIP_FLOW.lower(), f"the zip holds {ZIP_FLOW} twice (also as {ZIP_FLOW.lower()});"),
    ],
)
def test_a_flow_the_zip_holds_twice_is_a_problem_and_neither_copy_is_read(
    tmp_path: Path, second: str, message: str
) -> None:
    found = read_inputs([_zip_with(tmp_path, (second, b'{"definition": {}}'))])
    assert found.flows == ()
    held = [p for p in found.problems if p.message.startswith(message)]
    assert len(held) == 1
    assert held[0].kind == "flow"
    assert held[0].message.endswith("; another extractor may read the other copy")
    assert held[0].location == Location(f"{tmp_path.as_posix()}/dup.zip", ZIP_FLOW)


def test_customizations_held_twice_in_another_case_is_a_problem(tmp_path: Path) -> None:
    found = read_inputs([_zip_with(tmp_path, ("Customizations.xml", b"<ImportExportXml/>"))])
    assert found.steps == ()
    assert {p.location.member for p in found.problems if "twice" in p.message} == {
        "customizations.xml",
        "Customizations.xml",
    }


def test_a_name_the_reader_does_not_use_may_differ_in_case(tmp_path: Path) -> None:
    found = read_inputs([_zip_with(tmp_path, ("README.md", b"a"), ("readme.md", b"b"))])
    assert [f.flow_id for f in found.flows] == [INVOICES]
    assert found.problems == ()


def test_a_zip_whose_directory_is_over_the_limit_is_not_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = zip_folder(FIXTURES / "solution_zip", tmp_path / "billing.zip")
    monkeypatch.setattr(zips, "MAX_ZIP_DIRECTORY", 100)
    (problem,) = read_inputs([archive]).problems
    assert problem.message.startswith("not read: its directory is ")
    assert problem.message.endswith("over the 100 bytes limit (more files than any solution holds)")


# XML limits ------------------------------------------------------------------------------------


def _customizations(tmp_path: Path, body: str) -> Path:
    (tmp_path / "Other").mkdir()
    (tmp_path / "Other" / "Customizations.xml").write_text(
        f"<ImportExportXml>{body}</ImportExportXml>", encoding="utf-8"
    )
    return tmp_path


def _steps(count: int) -> str:
    return (
        "<SdkMessageProcessingSteps>"
        + "".join(
            f'<SdkMessageProcessingStep Name="P{n}: Update of account" '
            f'SdkMessageProcessingStepId="{{0a0b0c0d-{n:04d}-ee11-8179-000d3a1b2c3d}}">'
            "<Stage>40</Stage></SdkMessageProcessingStep>\n"
            for n in range(count)
        )
        + "</SdkMessageProcessingSteps>"
    )


@pytest.mark.parametrize(
    ("limit", "value", "body", "says"),
    [
        ("MAX_XML_DEPTH", 5, "<a>" * 10 + "</a>" * 10, "nested deeper than 5 elements"),
        (
            "MAX_XML_NAMES",
            50,
            "".join(f"<n{i}/>" for i in range(100)),
            "uses over 50 distinct names",
        ),
        (
            "MAX_RECORD_ELEMENTS",
            5,
            "<Workflows><Workflow>" + "<x/>" * 10 + "</Workflow></Workflows>",
            "a <Workflow> holds over 5 elements",
        ),
    ],
)
def test_xml_past_a_limit_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: str, value: int, body: str, says: str
) -> None:
    monkeypatch.setattr(xml_records, limit, value)
    (problem,) = read_inputs([_customizations(tmp_path, body)]).problems
    assert problem.message == f"XML not read: it {says}, past what any solution holds"


def test_a_start_tag_longer_than_the_markup_free_limit_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xml_records, "MAX_XML_RUN", 1000)
    monkeypatch.setattr(xml_records, "_XML_CHUNK", 64)
    attributes = " ".join(f'a{i}=""' for i in range(1000))
    (problem,) = read_inputs([_customizations(tmp_path, f"<x {attributes}/>")]).problems
    assert problem.message.startswith("XML not read: it holds over 1000 bytes without markup")


def test_customizations_are_read_record_by_record_in_bounded_memory(tmp_path: Path) -> None:
    """300,000 elements outside any record and 2,000 steps: only one record is built at a
    time, so memory stays a small fraction of what a whole tree would take."""
    _customizations(tmp_path, "<Entities>" + "<e/>" * 300_000 + "</Entities>" + _steps(2_000))
    tracemalloc.start()
    try:
        found = read_inputs([tmp_path])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(found.steps) == 2_000
    assert found.steps[-1].location.line == 2_000  # one step per line, the first on line 1
    assert peak < 12 * 1024 * 1024, peak


def _records(data: bytes, is_record: Any) -> list[tuple[bytes, int]]:
    """The records `_stream_xml` hands on, serialized, with their lines."""
    out: list[tuple[bytes, int]] = []

    def keep(element: Any, line: int) -> bool:
        out.append((ElementTree.tostring(element), line))
        return True

    xml_records.stream_xml(data, Location("x.xml"), "solution", limits.Found(), is_record, keep)
    return out


def _tree_records(data: bytes, parent: str, name: str) -> list[bytes]:
    """The same records cut from the whole tree ElementTree builds (the reference), without
    their tails: the text after a record is outside it, and not kept."""
    root = DefusedElementTree.fromstring(data)
    records = [
        child
        for holder in root.iter()
        if holder.tag.rsplit("}", 1)[-1] == parent
        for child in holder
        if child.tag.rsplit("}", 1)[-1] == name
    ]
    for record in records:
        record.tail = None
    return [ElementTree.tostring(record) for record in records]


def test_streamed_records_are_the_elements_elementtree_builds() -> None:
    """The handlers set on expat build what ElementTree's parser does: namespaced tags and
    attributes as {uri}name, attributes in their order, text, tails, comments and processing
    instructions left out, CDATA and references decoded; each with the line of its tag."""
    data = (
        b'<?xml version="1.0" encoding="utf-8"?>\n'
        b'<ImportExportXml xmlns="urn:d" xmlns:p="urn:p">\n<Workflows>\n'
        b'<Workflow p:b="1" a="2" xmlns:q="urn:q" q:c="3" Name="n">\n'
        b'  <x p:y="z">t<y/>u</x>tail <!-- c --> <?pi d?> <![CDATA[<&>]]> &lt;&#x41;\n'
        b"</Workflow>\n<Workflow/>\n"
        b"</Workflows>\n</ImportExportXml>\n"
    )
    found = _records(data, solution.is_customization_record)
    assert [element for element, _ in found] == _tree_records(data, "Workflows", "Workflow")
    assert [line for _, line in found] == [4, 7]
    assert b'ns1:y="z"' in found[0][0]  # the attribute kept its namespace


def test_a_record_past_the_depth_limit_inside_it_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xml_records, "MAX_XML_DEPTH", 6)
    body = _steps(2) + "<SdkMessageProcessingSteps><SdkMessageProcessingStep>"
    body += "<a>" * 4 + "</a>" * 4 + "</SdkMessageProcessingStep></SdkMessageProcessingSteps>"
    found = read_inputs([_customizations(tmp_path, body)])
    (problem,) = found.problems
    assert problem.message == (
        "XML not read: it nested deeper than 6 elements, past what any solution holds"
    )
    assert len(found.steps) == 2  # the records before it were handed on


def test_reading_leaves_no_cycles_and_the_collector_as_it_was(tmp_path: Path) -> None:
    """The collector is held off while the records are built: the parsers' cycles are
    broken as each file ends (a record left open by a limit too), so nothing waits for it."""
    body = _steps(50) + "<SdkMessageProcessingSteps><SdkMessageProcessingStep>"
    body += "<x/>" * 20_000 + "</SdkMessageProcessingStep></SdkMessageProcessingSteps>"
    folder = _customizations(tmp_path, body)
    gc.collect()
    assert gc.isenabled()
    gc.disable()
    try:
        found = read_inputs([folder])
        assert not gc.isenabled()  # left as it was: off
        assert len(found.steps) == 50
        assert "holds over 10,000 elements" in found.problems[0].message
        assert gc.collect() == 0
    finally:
        gc.enable()
    read_inputs([folder])
    assert gc.isenabled()


def test_a_zip_gives_the_steps_of_a_member_one_location(tmp_path: Path) -> None:
    archive = tmp_path / "s.zip"
    body = f"<ImportExportXml>{_steps(3)}</ImportExportXml>"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("customizations.xml", body)
    steps = read_inputs([archive]).steps
    assert [step.location for step in steps] == [
        Location(archive.as_posix(), "customizations.xml", None)
    ] * 3
    assert steps[0].location is steps[2].location


# The run's budget --------------------------------------------------------------------------------


def test_the_steps_budget_stops_reading_and_says_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_RUN_STEPS", 3)
    found = read_inputs([_customizations(tmp_path, _steps(10))])
    assert len(found.steps) == 3
    (problem,) = found.problems
    shown = f"{tmp_path.as_posix()}/Other/Customizations.xml"
    assert problem.message == (
        f"lint budget reached (over 3 plug-in steps): reading stopped at {shown}; "
        "the rest of it left out"
    )
    assert found.unread == problem.message + "; the report covers what was read"


def test_the_flows_budget_counts_the_files_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_RUN_FLOWS", 2)
    found = read_inputs([UNPACKED])
    assert len(found.flows) == 2
    assert found.unread is not None
    assert "(over 2 flows)" in found.unread
    # Two more flows, three step files and two classic workflows: nothing is read after.
    assert "; 7 file(s) left out;" in found.unread


def test_a_listing_cut_short_by_the_files_budget_is_no_usage_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "MAX_RUN_FILES", 2)
    found = read_inputs([UNPACKED])
    assert found.unread is not None
    assert "(over 2 files listed)" in found.unread
    assert [p.message for p in found.problems] == [found.unread.rsplit("; the report", 1)[0]]


def test_the_problems_budget_stops_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_RUN_PROBLEMS", 3)
    workflows = tmp_path / "Workflows"
    workflows.mkdir()
    for n in range(10):
        (workflows / f"Bad{n}.json").write_bytes(b"\xff not utf-8")
    found = read_inputs([tmp_path])
    assert len(found.problems) == 4  # three, and the one saying the budget is spent
    assert found.unread is not None
    assert "(over 3 files that cannot be read)" in found.unread


def test_a_wide_text_spends_its_size_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One character past Latin-1 makes every character take 4 bytes: the budget of flow
    definitions counts that, not the bytes of the file."""
    monkeypatch.setattr(limits, "MAX_RUN_FLOW_TEXT", 300_000)
    workflows = tmp_path / "Workflows"
    workflows.mkdir()
    text = '{"definition": {}, "pad": "' + "x" * 100_000 + '\U0001f600"}'
    (workflows / "Wide.json").write_text(text, encoding="utf-8")  # 100 KB, 400 KB as text
    found = read_inputs([tmp_path])
    assert found.flows == ()
    assert found.unread is not None
    assert "(over 293 KB of flow definitions)" in found.unread


def test_lines_of_keys_matches_line_of_key(unpacked: LintInputs) -> None:
    text = by_id(unpacked.flows, "flow_id")[ORDERS].text
    names = ["Try", "Catch", "Run_a_Child_Flow", "Terminate", "When_an_order_is_added", "nope"]
    lines = lines_of_keys(text, names)
    assert lines == {n: line_of_key(text, n) for n in names if line_of_key(text, n) is not None}
    assert "nope" not in lines
