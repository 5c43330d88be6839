"""What a scenario builds: the sizes of each scale and the kinds of environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    """Sizes per Dataverse environment."""

    flows: int  # cloud flows
    runs: int  # mean runs per flow (heavy-tailed)
    steps: int  # custom plug-in steps
    executions: int  # plug-in executions (before the trace setting hides some)
    nodv_flows: int  # flows of the environment without Dataverse


SCALE_PARAMS: Mapping[str, Scale] = {
    "tiny": Scale(flows=8, runs=20, steps=6, executions=260, nodv_flows=3),
    "small": Scale(flows=100, runs=60, steps=40, executions=15_000, nodv_flows=8),
    "medium": Scale(flows=200, runs=120, steps=60, executions=60_000, nodv_flows=16),
    "large": Scale(flows=250, runs=500, steps=80, executions=500_000, nodv_flows=20),
}


@dataclass(frozen=True)
class Profile:
    """What kind of environment to build: its name, settings and where violations go."""

    key: str  # messy | gaps | clean | dev | nodv
    display_name: str
    sku: str
    slug: str
    has_dataverse: bool
    trace_setting: int | None  # plugintracelogsetting: 0 Off, 1 Exception, 2 All


PROFILES: Mapping[str, Profile] = {
    "messy": Profile("messy", "Contoso Production", "Production", "contoso-production", True, 2),
    "gaps": Profile("gaps", "Contoso Sales Sandbox", "Sandbox", "contoso-sales-sandbox", True, 1),
    "clean": Profile("clean", "Fabrikam Operations", "Production", "fabrikam-operations", True, 2),
    "dev": Profile("dev", "Contoso Dev", "Developer", "contoso-dev", True, 0),
    "nodv": Profile("nodv", "Contoso Teams", "Default", "contoso-teams", False, None),
}


def profiles_for(scale: str) -> list[Profile]:
    """The environments of a scale: tiny keeps one messy, one clean and one without Dataverse."""
    keys = ["messy", "clean", "nodv"] if scale == "tiny" else list(PROFILES)
    return [PROFILES[k] for k in keys]
