"""The plug-in steps of an environment and the tables that register them.

Messages, filters, types, assemblies and steps, with the columns and lookups documented for
sdkmessageprocessingstep (https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/sdkmessageprocessingstep):
https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/sdkmessageprocessingstep
"""

from __future__ import annotations

from typing import Any

import numpy as np

from auditor.sim.names import COLUMNS, ENTITIES, HOSTILE, PLUGIN_CLASSES, guid
from auditor.sim.scenario.columns import NS, START_NS, bools, frame_of, ints, objs, secs, ts
from auditor.sim.scenario.profiles import Profile
from auditor.sim.scenario.state import EnvBuild, Step


def build_steps(b: EnvBuild) -> None:
    """The custom steps with a purpose in this profile, random fillers and two system steps."""
    rng = b.r_steps
    key = b.profile.key
    n_types = len(PLUGIN_CLASSES)
    cast: list[Step] = []

    def step(**kw: Any) -> Step:
        s = Step(
            sid=guid(rng),
            name="",
            rank=1,
            state=0,
            custom=1,
            type_index=int(rng.integers(0, n_types)),
            **kw,
        )
        return s

    if key == "messy":
        cast = [
            step(
                message="Update",
                entity="account",
                stage=20,
                mode=0,
                filtering=None,
                weight=3.0,
                median_ms=90.0,
                role="unfiltered-update",
            ),
            step(
                message="Update",
                entity="contact",
                stage=40,
                mode=0,
                filtering="parentcustomerid,telephone1",
                median_ms=60.0,
                role="chain-2",
            ),
            step(
                message="Update",
                entity="opportunity",
                stage=20,
                mode=0,
                filtering="estimatedvalue,statuscode",
                median_ms=2800.0,
                sigma=0.3,
                min_exec=40,
                role="slow-sync",
            ),
            step(
                message="Update",
                entity="account",
                stage=40,
                mode=1,
                filtering="creditlimit,statuscode",
                median_ms=400.0,
                role="chain-async",
            ),
            step(
                message="Create",
                entity="invoice",
                stage=20,
                mode=0,
                filtering=None,
                median_ms=350.0,
                near_timeout=5,
                min_exec=30,
                role="near-timeout",
            ),
            step(
                message="Create",
                entity="cr4f1_shipment",
                stage=40,
                mode=1,
                filtering=None,
                median_ms=900.0,
                fail=0.35,
                streak=12,
                min_exec=60,
                weight=2.0,
                role="failing-async",
            ),
            step(
                message="Update",
                entity="lead",
                stage=40,
                mode=0,
                filtering=None,
                role="disabled-unfiltered",
            ),
        ]
        cast[-1].state = 1
    elif key == "gaps":
        cast = [
            step(
                message="Update",
                entity="opportunity",
                stage=40,
                mode=0,
                filtering=None,
                weight=2.0,
                fail=0.04,
                role="unfiltered-update",
            ),
        ]
    for s in cast:
        if s.role in ("unfiltered-update", "slow-sync", "failing-async"):
            s.name = "x"  # named below, with a hostile suffix in the messy profile
    filler: list[Step] = []
    for i in range(max(0, b.sc.steps - len(cast))):
        message = str(rng.choice(["Update", "Update", "Create", "Delete", "SetState"]))
        entity = str(rng.choice(ENTITIES))
        stage = 40 if i == 0 else int(rng.choice([40, 40, 20, 20, 10]))
        # The first filler step is async so every environment has plug-in system jobs.
        mode = 1 if i == 0 or (stage == 40 and rng.random() < 0.3) else 0
        filtering = None
        if message == "Update":
            cols = COLUMNS[entity]
            picks = rng.choice(
                len(cols), size=min(int(rng.integers(1, 4)), len(cols)), replace=False
            )
            filtering = ",".join(cols[i] for i in sorted(picks.tolist()))
        s = step(
            message=message,
            entity=entity,
            stage=stage,
            mode=mode,
            filtering=filtering,
            weight=float(rng.lognormal(0.0, 1.0)),
            median_ms=float(rng.uniform(20, 300) if mode == 0 else rng.uniform(100, 1500)),
            sigma=float(rng.uniform(0.3, 0.55)),
            fail=float(rng.uniform(0.0, 0.04 if b.messy else 0.02)),
            role="filler",
        )
        if rng.random() < 0.05:
            s.state = 1
        filler.append(s)
    system = [
        Step(
            sid=guid(rng),
            name="",
            message="Update",
            entity=str(rng.choice(ENTITIES)),
            stage=40,
            mode=0,
            rank=1,
            filtering=None,
            state=0,
            custom=0,
            type_index=-1,
            role="system",
        )
        for _ in range(2)
    ]
    b.steps = cast + filler + system
    ranks: dict[tuple[str, str, int], int] = {}
    for s in b.steps:
        k = (s.message, s.entity, s.stage)
        ranks[k] = ranks.get(k, 0) + 1
        s.rank = ranks[k]
        tname = typename(b.profile, s.type_index)
        s.name = f"{tname}: {s.message} of {s.entity}"
        if b.messy and s.role in ("unfiltered-update", "slow-sync", "failing-async"):
            s.name += (
                " " + HOSTILE[("unfiltered-update", "slow-sync", "failing-async").index(s.role) + 3]
            )


def assembly(profile: Profile) -> str:
    """The custom plug-in assembly of the profile's publisher."""
    return "Fabrikam.Core" if profile.key == "clean" else "Contoso.Plugins"


def typename(profile: Profile, index: int) -> str:
    """The plug-in type of class `index`; a negative index is the platform's own."""
    if index < 0:
        return "Microsoft.Crm.ObjectModel.SyncWorkflowExecutionPlugin"
    return f"{assembly(profile)}.{PLUGIN_CLASSES[index]}"


def build_plugin_tables(b: EnvBuild) -> None:
    """Messages, filters, types, assemblies and steps (the step inventory's tables)."""
    rng = b.r_steps
    platform = np.random.Generator(np.random.PCG64(20261115))  # same ids in every org
    msg_names = [
        "Create",
        "Update",
        "Delete",
        "SetState",
        "Assign",
        "Retrieve",
        "RetrieveMultiple",
    ]
    msg_ids = {name: guid(platform) for name in msg_names}
    # Well-known ids seen identically in independent solution exports
    # (the same ids in exports from unrelated environments, e.g. mikefactorial/PluginSample).
    msg_ids["Create"] = "9ebdbb1b-ea3e-db11-86a7-000a3a5473e8"
    msg_ids["Update"] = "20bebb1b-ea3e-db11-86a7-000a3a5473e8"
    b.tables["sdkmessages"] = frame_of(
        {
            "sdkmessageid": objs(list(msg_ids.values())),
            "name": objs(list(msg_ids)),
            "isprivate": bools([False] * len(msg_ids)),
            "customizationlevel": ints([0] * len(msg_ids)),
        }
    )
    filters: dict[tuple[str, str], str] = {}
    for s in b.steps:
        filters.setdefault((s.message, s.entity), guid(rng))
    b.tables["sdkmessagefilters"] = frame_of(
        {
            "sdkmessagefilterid": objs(list(filters.values())),
            "primaryobjecttypecode": objs([e for (_, e) in filters]),
            "_sdkmessageid_value": objs([msg_ids[m] for (m, _) in filters]),
            "name": objs([f"{m} {e}" for (m, e) in filters]),
        }
    )
    asm_custom, asm_system = guid(rng), guid(rng)
    b.tables["pluginassemblies"] = frame_of(
        {
            "pluginassemblyid": objs([asm_custom, asm_system]),
            "name": objs([assembly(b.profile), "Microsoft.Crm.ObjectModel"]),
            "version": objs(["1.4.2.0" if b.messy else "3.1.0.0", "9.0.0.0"]),
            "isolationmode": ints([2, 1]),  # 2 Sandbox, 1 None
            "sourcetype": ints([0, 0]),  # 0 Database
            "ismanaged": bools([False, True]),
        }
    )
    type_ids = [guid(rng) for _ in PLUGIN_CLASSES]
    system_type = guid(rng)
    activity_type = guid(rng)
    names = [typename(b.profile, i) for i in range(len(PLUGIN_CLASSES))]
    b.tables["plugintypes"] = frame_of(
        {
            "plugintypeid": objs([*type_ids, system_type, activity_type]),
            "typename": objs(
                [*names, typename(b.profile, -1), f"{assembly(b.profile)}.SendWelcomeMail"]
            ),
            "name": objs(
                [*names, typename(b.profile, -1), f"{assembly(b.profile)}.SendWelcomeMail"]
            ),
            "assemblyname": objs(
                [assembly(b.profile)] * len(names)
                + ["Microsoft.Crm.ObjectModel", assembly(b.profile)]
            ),
            "isworkflowactivity": bools([False] * (len(names) + 1) + [True]),
            "_pluginassemblyid_value": objs([asm_custom] * len(names) + [asm_system, asm_custom]),
        }
    )
    steps = b.steps
    n = len(steps)
    handler = [system_type if s.type_index < 0 else type_ids[s.type_index] for s in steps]
    modified = START_NS - rng.integers(1, 300, size=n) * 86_400 * NS
    b.tables["sdkmessageprocessingsteps"] = frame_of(
        {
            "sdkmessageprocessingstepid": objs([s.sid for s in steps]),
            "name": objs([s.name for s in steps]),
            "stage": ints([s.stage for s in steps]),
            "mode": ints([s.mode for s in steps]),
            "rank": ints([s.rank for s in steps]),
            "filteringattributes": objs([s.filtering for s in steps]),
            "asyncautodelete": bools([s.mode == 1 and not b.messy for s in steps]),
            "statecode": ints([s.state for s in steps]),
            "statuscode": ints([2 if s.state else 1 for s in steps]),
            "ismanaged": bools([s.custom == 0 for s in steps]),
            "customizationlevel": ints([s.custom for s in steps]),
            "modifiedon": ts(secs(modified.astype(np.int64))),
            "_eventhandler_value": objs(handler),
            "_sdkmessageid_value": objs([msg_ids[s.message] for s in steps]),
            "_sdkmessagefilterid_value": objs([filters[(s.message, s.entity)] for s in steps]),
            "_plugintypeid_value": objs(handler),
        }
    )
