"""The operations a simulated cloud flow is made of: connector calls, HTTP calls and data
operations, each marked with whether it changes anything.

The flow builder draws its reads, effects and data operations from these tables; the run
executor reads `DATA_OPS` to know which actions take milliseconds rather than seconds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Op:
    """A connector operation (or HTTP call) and whether it changes anything."""

    api: str  # connector name, e.g. shared_sharepointonline; "" for HTTP
    operation: str  # operationId, or the HTTP method
    label: str  # designer-style action name
    effect: bool
    kind: str = "OpenApiConnection"


DATAVERSE_API = "shared_commondataserviceforapps"
SHAREPOINT_API = "shared_sharepointonline"
READS: tuple[Op, ...] = (
    Op(DATAVERSE_API, "ListRecords", "List_rows", False),
    Op(DATAVERSE_API, "GetItem", "Get_a_row_by_ID", False),
    Op(SHAREPOINT_API, "GetItem", "Get_item", False),
    Op(SHAREPOINT_API, "GetItems", "Get_items", False),
    Op("shared_office365users", "UserProfile_V2", "Get_user_profile_(V2)", False),
    Op("shared_excelonlinebusiness", "GetItems", "List_rows_present_in_a_table", False),
    Op("shared_onedriveforbusiness", "GetFileContent", "Get_file_content", False),
    Op("", "GET", "HTTP_Get", False, kind="Http"),
)
EFFECTS: tuple[Op, ...] = (
    Op(DATAVERSE_API, "CreateRecord", "Add_a_new_row", True),
    Op(DATAVERSE_API, "UpdateRecord", "Update_a_row", True),
    Op(DATAVERSE_API, "DeleteRecord", "Delete_a_row", True),
    Op(SHAREPOINT_API, "PostItem", "Create_item", True),
    Op(SHAREPOINT_API, "PatchItem", "Update_item", True),
    Op("shared_office365", "SendEmailV2", "Send_an_email_(V2)", True),
    Op("shared_teams", "PostMessageToConversation", "Post_message_in_a_chat_or_channel", True),
    Op("shared_excelonlinebusiness", "AddRowV2", "Add_a_row_into_a_table", True),
    Op("shared_onedriveforbusiness", "CreateFile", "Create_file", True),
)
HTTP_POST = Op("", "POST", "HTTP", True, kind="Http")
APPROVAL = Op(
    "shared_approvals",
    "StartAndWaitForAnApproval",
    "Start_and_wait_for_an_approval",
    True,
    kind="OpenApiConnectionWebhook",
)
MAIL = EFFECTS[5]
SP_CREATE = EFFECTS[3]
DV_UPDATE = EFFECTS[1]
TEAMS = EFFECTS[6]

# (type, designer name) of data operations; none of them has an effect (docs/how-a-scan-runs.md).
DATA_OPS: tuple[tuple[str, str], ...] = (
    ("Compose", "Compose"),
    ("ParseJson", "Parse_JSON"),
    ("SetVariable", "Set_variable"),
    ("Select", "Select"),
    ("Query", "Filter_array"),
    ("Join", "Join"),
    ("AppendToStringVariable", "Append_to_string_variable"),
    ("IncrementVariable", "Increment_variable"),
)
