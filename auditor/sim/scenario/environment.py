"""One environment of the simulated tenant, its parts built in a fixed order."""

from __future__ import annotations

import numpy as np
import pandas as pd

from auditor.sim.model import VISIBLE_BY, SimEnvironment
from auditor.sim.names import guid
from auditor.sim.scenario.columns import NOW_NS, NS, frame_of, ints, objs, ts
from auditor.sim.scenario.executions import build_trace_and_jobs
from auditor.sim.scenario.flow_tables import build_flow_tables, build_flowruns
from auditor.sim.scenario.flows import build_flows, flows_frame
from auditor.sim.scenario.plugins import build_plugin_tables, build_steps
from auditor.sim.scenario.profiles import Profile
from auditor.sim.scenario.runs import build_runs
from auditor.sim.scenario.state import EnvBuild, new_build
from auditor.sim.scenario.system_jobs import build_classic_jobs, build_job_table, build_trigger_jobs


def build_environment(
    seed: int, scale: str, index: int, profile: Profile, env_id: str
) -> SimEnvironment:
    """Environment `index` of the tenant: its parts built in a fixed order."""
    b = new_build(seed, scale, index, profile, env_id)
    build_flows(b)
    tables: dict[str, pd.DataFrame] = {}
    if b.profile.has_dataverse:
        build_steps(b)
        build_plugin_tables(b)
        build_trace_and_jobs(b)
        build_classic_jobs(b)
    build_runs(b)
    if b.profile.has_dataverse:
        build_flow_tables(b)
        build_trigger_jobs(b)
        build_flowruns(b)
        build_job_table(b)
        _build_org(b)
        tables = {k: _off_now(k, b.tables[k]) for k in sorted(b.tables)}
    if len(b.runs):
        # A run starting exactly at "now" would be visible or not depending on `<` vs `<=`.
        start = b.runs["start_time"].to_numpy(dtype="datetime64[ns]").view(np.int64)
        if (start == NOW_NS).any():
            shift = np.where(start == NOW_NS, 100, 0)
            b.runs["start_time"] = ts(start + shift)
            end = b.runs["end_time"].to_numpy(dtype="datetime64[ns]").view(np.int64)
            b.runs["end_time"] = ts(end + shift)
    return SimEnvironment(
        env_id=b.env_id,
        display_name=b.profile.display_name,
        sku=b.profile.sku,
        slug=b.profile.slug,
        has_dataverse=b.profile.has_dataverse,
        tables=tables,
        flows=flows_frame(b),
        runs=b.runs,
        job_plan=b.job_plan,
    )


def _off_now(entity_set: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Move rows stamped exactly at "now" one second later.

    A scan's window ends at "now" with `lt`, while the server reveals rows with `<=`; keeping
    no row on the boundary makes both agree.
    """
    column = VISIBLE_BY.get(entity_set)
    if column is None or frame.empty:
        return frame
    values = frame[column].to_numpy(dtype="datetime64[ns]").view(np.int64)
    if (values == NOW_NS).any():
        frame = frame.copy()
        frame[column] = ts(np.where(values == NOW_NS, NOW_NS + NS, values))
    return frame


def _build_org(b: EnvBuild) -> None:
    """The one `organizations` row, with the profile's trace setting."""
    b.tables["organizations"] = frame_of(
        {
            "organizationid": objs([guid(b.r_steps)]),
            "name": objs([b.profile.slug.replace("-", "")]),
            "plugintracelogsetting": ints([b.profile.trace_setting or 0]),
            "flowruntimetoliveinseconds": ints([2_419_200]),  # 28 days, the default
        }
    )
