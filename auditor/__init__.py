"""auditor: audits the background jobs of a Power Platform tenant.

It collects cloud-flow definitions and runs, Dataverse plug-in steps, trace logs and system
jobs into a local store, measures what really happens, and answers the Well-Architected
reliability question "How do you implement background jobs?" with evidence.
"""

from __future__ import annotations

__version__ = "0.1.0"
