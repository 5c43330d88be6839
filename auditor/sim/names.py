"""Names, hostile strings and vectorised id helpers for the scenario generator.

Kept apart from `scenario` so the pools of display names (with non-ASCII text and strings
that attack HTML, CSV and terminals) are easy to review, and so ids for a million rows are made
with numpy instead of one `uuid.uuid4()` call per row.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

# Strings that must never execute or be interpreted when a report shows them: markup,
# spreadsheet formulas (CSV injection), a javascript: URL, terminal escapes, bidi overrides.
HOSTILE: tuple[str, ...] = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "javascript:alert(1)",
    '=HYPERLINK("http://x","y")',
    "+cmd|' /C calc'!A0",
    "@SUM(1)",
    "-2+3+cmd|' /C calc'!A0",
    "\x1b[31mred\x1b[0m\x07",
    "tab\there\r\nnew line",
    "\u202eevil\u202c",
    "zero\u200bwidth",
)

# Display names of flows: plain English, non-ASCII, and a few that carry a hostile string.
FLOW_NAMES: tuple[str, ...] = (
    "Sync accounts to ERP",
    "Notify sales on new opportunity",
    "Invoice intake",
    "Rechnungsprüfung – Eingang",
    "請求書の承認",
    "Synchronisation des comptes – été",
    "Approve purchase request",
    "Escalate overdue cases",
    "Welcome new contact",
    "Archive closed cases",
    "Daily pipeline digest",
    "Update shipment status",
    "Onboarding checklist",
    "Expense report routing",
    "Lead scoring refresh",
    "Contract renewal reminder",
    "Customer survey follow-up",
    "Inventory threshold alert",
    "Service ticket triage",
    "Partner portal sync",
    "Kundenstammdaten abgleichen",
    "出荷ステータス更新",
    "Validación de pedidos",
    "Weekly KPI export",
    "Teams channel digest",
    "Order fulfilment bridge",
    "Vendor onboarding",
    "Quote approval",
    "Case survey dispatcher",
    "Record owner reassignment",
)

ENTITIES: tuple[str, ...] = (
    "account",
    "contact",
    "opportunity",
    "incident",
    "invoice",
    "salesorder",
    "lead",
    "cr4f1_shipment",
    "cr4f1_inspection",
    "quote",
)

# Columns used in filtering attributes and filter expressions, per table.
COLUMNS: dict[str, tuple[str, ...]] = {
    "account": ("name", "telephone1", "statuscode", "ownerid", "creditlimit", "accountnumber"),
    "contact": ("parentcustomerid", "telephone1", "emailaddress1", "statuscode", "jobtitle"),
    "opportunity": ("estimatedvalue", "statuscode", "stepname", "closeprobability"),
    "incident": ("statuscode", "prioritycode", "ownerid", "title", "customerid"),
    "invoice": ("statuscode", "totalamount", "duedate", "paymenttermscode"),
    "salesorder": ("statuscode", "totalamount", "requestdeliveryby"),
    "lead": ("statuscode", "leadqualitycode", "companyname"),
    "cr4f1_shipment": ("cr4f1_status", "cr4f1_carrier", "cr4f1_eta"),
    "cr4f1_inspection": ("cr4f1_result", "cr4f1_inspector"),
    "quote": ("statuscode", "totalamount", "effectiveto"),
}

PLUGIN_CLASSES: tuple[str, ...] = (
    "AccountValidation",
    "ContactSync",
    "OpportunityRollup",
    "CaseRouting",
    "InvoiceNumbering",
    "ShipmentTracker",
    "CreditCheck",
    "AuditStamp",
    "DuplicateGuard",
    "TerritoryAssignment",
    "PriceCalculator",
    "NotificationDispatch",
)

ERROR_MESSAGES: tuple[str, ...] = (
    "The remote server returned an error: (500) Internal Server Error.",
    "Object reference not set to an instance of an object.",
    "Credit limit exceeded for customer.",
    "The record could not be saved: a duplicate was detected.",
    "Timeout while calling https://erp.contoso.example/api/orders.",
    "Zugriff verweigert: Rechnungsnummer bereits vergeben.",
    "請求書番号が重複しています。",
    "Principal user is missing prvWriteAccount privilege.",
)

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# Byte i of a GUID goes to these two character positions of its 8-4-4-4-12 text form.
_HI = np.array([0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34])
_DASHES = np.array([8, 13, 18, 23])


def _guid_bytes(rng: np.random.Generator, n: int) -> npt.NDArray[np.uint8]:
    """The 16 bytes of `n` random version-4 GUIDs (RFC 4122 version and variant bits set)."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    return raw


def guids(rng: np.random.Generator, n: int) -> npt.NDArray[np.object_]:
    """`n` random version-4 GUIDs as lower-case strings, built without a Python loop per id."""
    raw = _guid_bytes(rng, n)
    text = np.empty((n, 36), dtype=np.uint8)
    text[:, _HI] = _HEX[raw >> 4]
    text[:, _HI + 1] = _HEX[raw & 0x0F]
    text[:, _DASHES] = ord("-")
    as_bytes = text.view("S36").ravel()
    return as_bytes.astype("U36").astype(object)


def guid_list(rng: np.random.Generator, n: int) -> list[str]:
    """The GUIDs `guids` makes from the same draw of `rng`, as a list: for the few ids of one
    answer, where numpy's cost per call is more than a loop over them."""
    h = _guid_bytes(rng, n).tobytes().hex()
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-{h[i + 12 : i + 16]}-{h[i + 16 : i + 20]}-"
        f"{h[i + 20 : i + 32]}"
        for i in range(0, 32 * n, 32)
    ]


def guid(rng: np.random.Generator) -> str:
    """One random GUID (see `guids`)."""
    return str(guids(rng, 1)[0])


def run_names(rng: np.random.Generator, start_ticks: npt.NDArray[np.int64]) -> list[str]:
    """Logic Apps style run names: 29 digits then `CU` and a scale-unit number.

    Real names start with `08585` and count down with time (reverse ticks); the shape is
    documented in https://learn.microsoft.com/rest/api/logic/workflowruns/get. Random low
    digits keep them unique.
    """
    n = len(start_ticks)
    # 16 digits from reverse time (later runs get smaller numbers), 9 random digits.
    reverse = (np.int64(9_999_999_999_999_999) - start_ticks // 10).astype(np.int64)
    reverse = reverse % np.int64(10**16)
    low = rng.integers(0, 10**9, size=n, dtype=np.int64)
    unit = rng.integers(0, 32, size=n, dtype=np.int64)
    return [
        f"0858{r:016d}{lo:09d}CU{u:02d}"
        for r, lo, u in zip(reverse.tolist(), low.tolist(), unit.tolist(), strict=True)
    ]
