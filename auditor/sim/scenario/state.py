"""One environment while it is built: its profile, its random streams and the parts so far.

Each part of the scenario (`flows`, `plugins`, `executions`, `system_jobs`, `runs`,
`flow_tables`) is a function of an `EnvBuild`, reading what earlier parts made and adding its
own. Every purpose draws from its own stream, and `environment.build_environment` calls the
parts in a fixed order, so the same seed and scale give the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from auditor.sim.flow_builder import BuiltFlow
from auditor.sim.flow_spec import FlowSpec
from auditor.sim.names import guid
from auditor.sim.scenario.columns import I64, OBJ, rng_for
from auditor.sim.scenario.profiles import SCALE_PARAMS, Profile, Scale


@dataclass
class Flow:
    """A cloud flow being built: its definition spec and the rates its runs are drawn with."""

    name: str
    display: str
    workflowid: str | None
    spec: FlowSpec
    state: str = "Started"
    runs: int = 0
    noop: float = 0.0
    fail: float = 0.0
    streak: int = 0
    exhausted: int = 0
    recovered: float = 0.0
    cancel: float = 0.0
    seconds: float = 8.0  # median run duration
    false_trigger_ratio: float = 0.0  # trigger jobs that find the trigger condition false
    chain: bool = False
    built: BuiltFlow | None = None
    created_ns: int = 0
    modified_ns: int = 0
    child_calls: dict[str, str] = field(default_factory=dict)  # action name -> workflowid


@dataclass
class Step:
    """A plug-in step being built: its registration and how its executions behave."""

    sid: str
    name: str
    message: str
    entity: str
    stage: int
    mode: int
    rank: int
    filtering: str | None
    state: int
    custom: int
    type_index: int
    weight: float = 1.0
    min_exec: int = 0
    median_ms: float = 120.0
    sigma: float = 0.5
    fail: float = 0.01
    streak: int = 0
    near_timeout: int = 0
    role: str = ""


@dataclass
class EnvBuild:
    """One environment's inputs, random streams and the parts built so far."""

    seed: int
    scale: str
    index: int
    profile: Profile
    env_id: str
    sc: Scale
    messy: bool
    r_flows: np.random.Generator
    r_defs: np.random.Generator
    r_runs: np.random.Generator
    r_steps: np.random.Generator
    r_exec: np.random.Generator
    r_jobs: np.random.Generator
    owner: str
    flows: list[Flow] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    # System jobs column-wise, one dict per kind, and trace-log frames, joined at the end.
    job_parts: list[dict[str, Any]] = field(default_factory=list)
    pending_traces: list[pd.DataFrame] = field(default_factory=list)
    job_plan: pd.DataFrame = field(default_factory=pd.DataFrame)
    # Plug-in chains (start time and correlation id) a Dataverse-triggered run joins.
    chain_ns: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    chain_corr: OBJ = field(default_factory=lambda: np.zeros(0, dtype=object))
    runs: pd.DataFrame = field(default_factory=pd.DataFrame)
    run_flow_idx: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def new_build(seed: int, scale: str, index: int, profile: Profile, env_id: str) -> EnvBuild:
    """The streams of environment `index`, one per purpose (the owner is the first flow draw)."""
    r_flows = rng_for(seed, scale, index, 1)
    return EnvBuild(
        seed=seed,
        scale=scale,
        index=index,
        profile=profile,
        env_id=env_id,
        sc=SCALE_PARAMS[scale],
        messy=profile.key == "messy",
        r_flows=r_flows,
        r_defs=rng_for(seed, scale, index, 2),
        r_runs=rng_for(seed, scale, index, 3),
        r_steps=rng_for(seed, scale, index, 4),
        r_exec=rng_for(seed, scale, index, 5),
        r_jobs=rng_for(seed, scale, index, 6),
        owner=guid(r_flows),
    )
