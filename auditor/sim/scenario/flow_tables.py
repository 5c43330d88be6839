"""The Dataverse tables about flows: workflows, callback registrations, flow runs, events.

Every solution flow has a `workflows` row whose `clientdata` holds the definition the flow
API serves; Dataverse-triggered flows that are on have a `callbackregistrations` row (`name` =
the flow's workflowid: our inference, the documented columns do not say which flow a
registration belongs to). The `flowruns` of solution flows are the flow API's runs (same name,
times, status), recorded when the run ends plus an ingestion delay.
https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/callbackregistration
https://learn.microsoft.com/power-automate/dataverse/cloud-flow-run-metadata
"""

from __future__ import annotations

import json

import numpy as np

from auditor.sim.flow_spec import TRIGGER_TYPE
from auditor.sim.names import guids
from auditor.sim.scenario.columns import (
    NOW_NS,
    NS,
    START_NS,
    bools,
    const,
    frame_of,
    ints,
    objs,
    secs,
    ts,
)
from auditor.sim.scenario.state import EnvBuild, Flow


def build_flow_tables(b: EnvBuild) -> None:
    """The `workflows` rows of solution flows and the `callbackregistrations` of those on."""
    rng = b.r_jobs
    flows = b.flows
    sol = [f for f in flows if f.workflowid]
    n = len(sol)
    created = np.array([f.created_ns for f in sol], dtype=np.int64)
    modified = np.array([f.modified_ns for f in sol], dtype=np.int64)
    on = np.array([f.state == "Started" for f in sol], dtype=bool)
    b.tables["workflows"] = frame_of(
        {
            "workflowid": objs([f.workflowid for f in sol]),
            "workflowidunique": objs(guids(rng, n)),
            "name": objs([f.display for f in sol]),
            "category": ints(np.full(n, 5)),  # 5 Modern Flow
            "type": ints(np.ones(n, dtype=np.int64)),  # 1 Definition
            "statecode": ints(on.astype(np.int64)),  # 1 Activated, 0 Draft
            "statuscode": ints(np.where(on, 2, 1)),
            "ismanaged": bools(np.zeros(n, dtype=bool)),
            "primaryentity": const("none", n),
            "modernflowtype": ints(np.zeros(n, dtype=np.int64)),
            "clientdata": objs([_clientdata(f) for f in sol]),
            "createdon": ts(secs(created)),
            "modifiedon": ts(secs(modified)),
            "_ownerid_value": const(b.owner, n),
        }
    )
    cb = [f for f in sol if f.spec.trigger == "dataverse" and f.state == "Started"]
    m = len(cb)
    msg_names = {
        1: "Create",
        2: "Delete",
        3: "Update",
        4: "Create,Update",
        5: "Create,Delete",
        6: "Update,Delete",
        7: "Create,Update,Delete",
    }
    b.tables["callbackregistrations"] = frame_of(
        {
            "callbackregistrationid": objs(guids(rng, m)),
            "name": objs([f.workflowid for f in cb]),
            "entityname": objs([f.spec.dv_entity for f in cb]),
            "message": ints([f.spec.dv_message for f in cb]),
            "scope": ints(np.full(m, 4)),  # 4 Organization
            "filteringattributes": objs([f.spec.dv_filtering for f in cb]),
            "filterexpression": objs([f.spec.dv_filterexpr for f in cb]),
            "runas": ints(np.full(m, 3)),
            "sdkmessagename": objs([msg_names[f.spec.dv_message] for f in cb]),
            "version": ints(np.ones(m, dtype=np.int64)),
            "createdon": ts(secs(np.array([f.modified_ns for f in cb], dtype=np.int64))),
            "modifiedon": ts(secs(np.array([f.modified_ns for f in cb], dtype=np.int64))),
            "_ownerid_value": const(b.owner, m),
        }
    )


def build_flowruns(b: EnvBuild) -> None:
    """The `flowruns` of solution flows' runs and, in the gaps profile, the lost ones' events."""
    rng = b.r_jobs
    runs = b.runs
    flows = b.flows
    fidx = b.run_flow_idx
    sol = np.array([f.workflowid is not None for f in flows], dtype=bool)
    sel = np.flatnonzero(sol[fidx]) if len(fidx) else np.zeros(0, dtype=np.int64)
    start = runs["start_time"].to_numpy(dtype="datetime64[ns]").view(np.int64)[sel]
    end = runs["end_time"].to_numpy(dtype="datetime64[ns]").view(np.int64)[sel]
    delay = np.round(np.exp(rng.normal(np.log(120), 0.8, len(sel)))).astype(np.int64) * NS
    created = secs(end) + delay
    keep = np.ones(len(sel), dtype=bool)
    events: list[tuple[int, str, str, int]] = []
    if b.profile.key == "gaps":
        # Two ingestion-loss windows: part of the runs never reach Dataverse, and
        # flowevents says so (the documented gap signal).
        for w, code in ((0.3, "IngestionRateDataLoss"), (0.65, "IngestionRateDataLoss")):
            lo = START_NS + int(w * (NOW_NS - START_NS))
            hi = lo + 3 * 3600 * NS
            inside = (created >= lo) & (created < hi)
            lost = inside & (rng.random(len(sel)) < 0.4)
            keep &= ~lost
            affected = sorted({int(x) for x in fidx[sel][lost].tolist()})
            for f in affected:
                events.append(
                    (
                        hi + 300 * NS,
                        code,
                        str(flows[f].workflowid),
                        int(np.sum(lost & (fidx[sel] == f))),
                    )
                )
        events.append(
            (
                NOW_NS - 86_400 * NS,
                "ElasticTablePartitionLimitReached",
                str(flows[0].workflowid),
                0,
            )
        )
    sel, start, end, created = sel[keep], start[keep], end[keep], created[keep]
    r = runs.iloc[sel]
    n = len(sel)
    fl = [flows[i] for i in fidx[sel].tolist()]
    parent = r["_sim_parent_run"].to_numpy()
    # Dataverse has its own words for a run's end result: Success, Failed or Cancelled,
    # not the flow API's Succeeded (flowrun Status, "End result of the flow execution";
    # https://learn.microsoft.com/power-automate/dataverse/cloud-flow-run-metadata).
    # Every run here has ended: one is recorded when it ends, plus the ingestion delay,
    # so a run still going at `now` has no visible row yet.
    words = {"Succeeded": "Success", "Failed": "Failed", "Cancelled": "Cancelled"}
    status = np.array([words.get(s, s) for s in r["status"].tolist()], dtype=object)
    b.tables["flowruns"] = frame_of(
        {
            "flowrunid": objs(guids(rng, n)),
            "name": objs(r["name"].to_numpy()),
            "_workflow_value": objs([f.workflowid for f in fl]),
            "workflowid": objs([f.workflowid for f in fl]),
            "status": objs(status),
            "starttime": ts(secs(start)),
            "endtime": ts(secs(end)),
            "duration": ints((end - start) // 1_000_000),
            "triggertype": objs([TRIGGER_TYPE[f.spec.trigger] for f in fl]),
            "errorcode": objs(r["error_code"].to_numpy()),
            "errormessage": objs(
                [
                    None if m is None else json.dumps({"code": c, "message": m}, ensure_ascii=False)
                    for c, m in zip(
                        r["error_code"].tolist(), r["error_message"].tolist(), strict=True
                    )
                ]
            ),
            "parentrunid": objs(parent),
            "isprimary": ints(np.array([p is None for p in parent.tolist()], dtype=np.int64)),
            "clienttrackingid": objs(r["client_tracking_id"].to_numpy()),
            "createdon": ts(created),
        }
    )
    k = len(events)
    b.tables["flowevents"] = frame_of(
        {
            "floweventid": objs(guids(rng, k)),
            "name": const("FlowRunIngestion", k),
            "eventtype": const("FlowRunIngestion", k),
            "eventcode": objs([e[1] for e in events]),
            "eventcontent": objs([json.dumps({"lostRunCount": e[3]}) for e in events]),
            "level": ints(np.full(k, 2)),  # our inference: 2 = warning
            "parentobjectlogicalname": const("workflow", k),
            "_parentobjectid_value": objs([e[2] for e in events]),
            "createdon": ts(secs(np.array([e[0] for e in events], dtype=np.int64))),
        }
    )


def _clientdata(flow: Flow) -> str:
    assert flow.built is not None
    return json.dumps(
        {
            "properties": {
                "connectionReferences": flow.built.connection_references,
                "definition": flow.built.definition,
            },
            "schemaVersion": "1.0.0.0",
        },
        ensure_ascii=False,
    )
