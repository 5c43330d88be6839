"""Formatted values: choice labels and lookup names served with
`OData.Community.Display.V1.FormattedValue` when the `Prefer` header asks for them.

Apart because it is reference data copied from Microsoft's table pages, not query logic.
"""

from __future__ import annotations

from collections.abc import Mapping

FORMATTED_VALUE = "OData.Community.Display.V1.FormattedValue"

# A lookup's formatted value is the primary name of the row it points to: lookup column ->
# target entity set, per source entity set.
# https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/select-columns#formatted-values
LOOKUP_NAMES: Mapping[str, Mapping[str, str]] = {
    "flowruns": {"_workflow_value": "workflows"},
}
# PrimaryNameAttribute of the targets (the generated table reference pages).
PRIMARY_NAMES: Mapping[str, str] = {"workflows": "name"}


# Choice labels for `OData.Community.Display.V1.FormattedValue`, from the generated table
# reference pages (https://learn.microsoft.com/power-apps/developer/data-platform/reference/
# entities/<table>), as listed with their pages in queries/contract.toml.

_ASYNC_OPERATION_TYPES = {
    1: "System Event", 2: "Bulk Email", 3: "Import File Parse", 4: "Transform Parse Data",
    5: "Import", 6: "Activity Propagation", 7: "Duplicate Detection Rule Publish",
    8: "Bulk Duplicate Detection", 9: "SQM Data Collection", 10: "Workflow",
    11: "Quick Campaign", 12: "Matchcode Update", 13: "Bulk Delete", 14: "Deletion Service",
    15: "Index Management", 16: "Collect Organization Statistics", 17: "Import Subprocess",
    18: "Calculate Organization Storage Size", 19: "Collect Organization Database Statistics",
    20: "Collection Organization Size Statistics", 21: "Database Tuning",
    22: "Calculate Organization Maximum Storage Size", 23: "Bulk Delete Subprocess",
    24: "Update Statistic Intervals", 25: "Organization Full Text Catalog Index",
    26: "Database log backup", 27: "Update Contract States",
    28: "DBCC SHRINKDATABASE maintenance job", 29: "DBCC SHRINKFILE maintenance job",
    30: "Reindex all indices maintenance job", 31: "Storage Limit Notification",
    32: "Cleanup inactive workflow assemblies", 35: "Recurring Series Expansion",
    38: "Import Sample Data", 40: "Goal Roll Up", 41: "Audit Partition Creation",
    42: "Check For Language Pack Updates", 43: "Provision Language Pack",
    44: "Update Organization Database", 45: "Update Solution",
    46: "Regenerate Entity Row Count Snapshot Data", 47: "Regenerate Read Share Snapshot Data",
    49: "Post to Yammer", 50: "Outgoing Activity", 51: "Incoming Email Processing",
    52: "Mailbox Test Access", 53: "Encryption Health Check", 54: "Execute Async Request",
    56: "Update Entitlement States", 57: "Calculate Rollup Field",
    58: "Mass Calculate Rollup Field", 59: "Import Translation",
    62: "Convert Date And Time Behavior", 63: "EntityKey Index Creation",
    65: "Update Knowledge Article States", 68: "Resource Booking Sync",
    69: "Relationship Assistant Cards", 71: "Cleanup Solution Components",
    72: "App Module Metadata Operation", 73: "ALM Anomaly Detection Operation",
    75: "Flow Notification", 76: "Ribbon Client Metadata Operation",
    79: "CallbackRegistration Expander Operation", 85: "Migrate notes to attachments job",
    86: "Migrate article content to file storage",
    87: "Updated Deactived On for Resolved Cases job", 90: "CascadeAssign",
    91: "CascadeDelete", 92: "Event Expander Operation", 93: "Import Solution Metadata",
    94: "Bulk Delete File Attachment",
    95: "Refresh Business Unit for Records Owned By Principal", 96: "Revoke Inherited Access",
    98: "Create Or Refresh Virtual Entity",
    100: "Cascade FlowSession Permissions Async Operation",
    101: "Update Modern Flow Async Operation", 102: "AsyncArchive Async Operation",
    103: "Cancel Async Operations (System)", 201: "Provision language for user",
    202: "Export Solution Async Operation", 203: "Import Solution Async Operation",
    204: "PublishAll Async Operation", 207: "DeleteAndPromote Async Operation",
    208: "UninstallSolution Async Operation", 209: "ProvisionLanguage Async Operation",
    210: "ImportTranslation Async Operation", 211: "StageAndUpgrade Async Operation",
    239: "Denormalization Async Operation",
    250: "Refresh Runtime Integration Components Async Operation",
    300: "Bulk Archive Operation", 301: "Archive Execution Async Operation",
    302: "FinOps Deployment Async Operation", 304: "Purge Archived Content Operation",
    305: "Register Offering Async Operation", 306: "Execute DataProcessing Configuration",
    307: "Sync Synapse Tables Schema", 308: "FinOps DB Sync Async Operation",
    309: "FinOps Unit Test Async Operation",
    12801: "Cascade Grant or Revoke Access Version Tracking Async Operation",
    190690091: "AI Builder Training Events", 190690092: "AI Builder Prediction Events",
}  # fmt: skip

_SYNC_ASYNC = {0: "Synchronous", 1: "Asynchronous"}

CHOICE_LABELS: Mapping[str, Mapping[str, Mapping[int, str]]] = {
    "plugintracelogs": {
        "mode": _SYNC_ASYNC,
        "operationtype": {0: "Unknown", 1: "Plug-in", 2: "Workflow Activity"},
    },
    "asyncoperations": {
        "operationtype": _ASYNC_OPERATION_TYPES,
        "statecode": {0: "Ready", 1: "Suspended", 2: "Locked", 3: "Completed"},
        "statuscode": {
            0: "Waiting For Resources", 10: "Waiting", 20: "In Progress", 21: "Pausing",
            22: "Canceling", 30: "Succeeded", 31: "Failed", 32: "Canceled",
        },
    },
    "sdkmessageprocessingsteps": {
        "stage": {
            5: "Initial Pre-operation (For internal use only)", 10: "Pre-validation",
            15: "Internal Pre-operation Before External Plugins (For internal use only)",
            20: "Pre-operation",
            25: "Internal Pre-operation After External Plugins (For internal use only)",
            30: "Main Operation (For internal use only)",
            35: "Internal Post-operation Before External Plugins (For internal use only)",
            40: "Post-operation",
            45: "Internal Post-operation After External Plugins (For internal use only)",
            50: "Post-operation (Deprecated)", 55: "Final Post-operation (For internal use only)",
            80: "Pre-Commit stage fired before transaction commit (For internal use only)",
            90: "Post-Commit stage fired after transaction commit (For internal use only)",
        },
        "mode": _SYNC_ASYNC,
        "statecode": {0: "Enabled", 1: "Disabled"},
        "statuscode": {1: "Enabled", 2: "Disabled"},
    },
    "workflows": {
        "category": {
            0: "Workflow", 1: "Dialog", 2: "Business Rule", 3: "Action",
            4: "Business Process Flow", 5: "Modern Flow", 6: "Desktop Flow", 7: "AI Flow",
        },
        "type": {1: "Definition", 2: "Activation", 3: "Template"},
        "statecode": {0: "Draft", 1: "Activated", 2: "Suspended"},
        "statuscode": {1: "Draft", 2: "Activated", 3: "CompanyDLPViolation"},
    },
    "callbackregistrations": {
        "message": {
            1: "Create", 2: "Delete", 3: "Update", 4: "Create or Update",
            5: "Create or Delete", 6: "Update or Delete", 7: "Create or Update or Delete",
        },
        "scope": {1: "User", 2: "BusinessUnit", 3: "ParentChildBusinessUnit", 4: "Organization"},
        "runas": {1: "Triggering User", 2: "Record Owner", 3: "Process Owner"},
    },
    "organizations": {"plugintracelogsetting": {0: "Off", 1: "Exception", 2: "All"}},
    "pluginassemblies": {
        "isolationmode": {1: "None", 2: "Sandbox", 3: "External"},
        "sourcetype": {0: "Database", 1: "Disk", 2: "Normal", 3: "AzureWebApp", 4: "File Store"},
    },
}  # fmt: skip
