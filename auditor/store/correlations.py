"""Reads by correlation id for `auditor trace`: the plug-in executions, system jobs and flow
runs of one chain, and where correlation ids can be found."""

from __future__ import annotations

import pandas as pd

from auditor.store.connection import StoreConnection


class CorrelationReads(StoreConnection):
    """The rows of one correlation id (lower case), with the names they point to."""

    def correlation_traces(self, wanted: str) -> pd.DataFrame:
        """Plug-in executions with the id, with their step's name and stage."""
        return self._frame(
            "SELECT t.environment_id, t.plugintracelogid, t.typename, t.messagename,"
            " t.primaryentity, t.mode, t.depth, t.pluginstepid,"
            " coalesce(t.performanceexecutionstarttime, t.createdon) AS time,"
            " t.performanceexecutionduration AS duration_ms, t.exceptiondetails,"
            " s.name AS step_name, s.stage"
            " FROM plugintracelogs t LEFT JOIN plugin_steps s"
            " ON s.environment_id = t.environment_id AND s.stepid = t.pluginstepid"
            " WHERE t.correlationid = ?",
            [wanted],
        )

    def correlation_jobs(self, wanted: str) -> pd.DataFrame:
        """System jobs with the id, with their step and the flow they trigger."""
        # The flow a trigger job belongs to: the flow API's name for it, else the workflow's.
        return self._frame(
            "SELECT a.environment_id, a.asyncoperationid, a.name, a.operationtype, a.statecode,"
            " a.statuscode, a.messagename, a.primaryentitytype, a.depth, a.retrycount,"
            " a.errorcode, a.message, a.friendlymessage, a.createdon, a.startedon,"
            " a.completedon, a.workflowactivationid, a.owningextensionid,"
            " s.name AS step_name,"
            " (SELECT any_value(f.display_name) FROM flows f WHERE f.environment_id ="
            " a.environment_id AND f.workflowid = a.workflowactivationid) AS flow_display,"
            " (SELECT any_value(f.flow_name) FROM flows f WHERE f.environment_id ="
            " a.environment_id AND f.workflowid = a.workflowactivationid) AS flow_name,"
            " (SELECT any_value(w.name) FROM workflows w WHERE w.environment_id ="
            " a.environment_id AND w.workflowid = a.workflowactivationid) AS workflow_name"
            " FROM asyncoperations a LEFT JOIN plugin_steps s"
            " ON s.environment_id = a.environment_id AND s.stepid = a.owningextensionid"
            " WHERE a.correlationid = ?",
            [wanted],
        )

    def correlation_runs(self, wanted: str) -> pd.DataFrame:
        """Runs with the id as client tracking id, from the flow API and Dataverse, one row per
        run (the two sources describe the same run under the same name)."""
        # A client tracking id is free text for flows not started by Dataverse, so it is compared
        # without regard to case rather than normalised like a GUID.
        return self._frame(
            "WITH api AS ("
            " SELECT r.environment_id, r.flow_name, r.run_name, r.start_time, r.end_time,"
            " r.status, r.error_code, r.error_message, r.trigger_name,"
            " f.display_name, f.workflowid"
            " FROM flow_api_runs r LEFT JOIN flows f"
            " ON f.environment_id = r.environment_id AND f.flow_name = r.flow_name"
            " WHERE lower(r.client_tracking_id) = ?),"
            " dv AS ("
            " SELECT environment_id, name AS run_name, workflowid, workflowname, status,"
            " starttime, endtime, duration, errorcode, errormessage, parentrunid, triggertype,"
            " (SELECT any_value(f.flow_name) FROM flows f WHERE f.environment_id ="
            " d.environment_id AND f.workflowid = d.workflowid) AS flow_name"
            " FROM flowruns d WHERE lower(clienttrackingid) = ?)"
            " SELECT coalesce(api.environment_id, dv.environment_id) AS environment_id,"
            " coalesce(api.run_name, dv.run_name) AS run_name,"
            " coalesce(api.flow_name, dv.flow_name, dv.workflowid) AS flow_id,"
            " coalesce(api.workflowid, dv.workflowid) AS workflowid,"
            " coalesce(api.display_name, dv.workflowname, api.flow_name) AS flow_display,"
            " coalesce(api.start_time, dv.starttime) AS start_time,"
            " coalesce(api.end_time, dv.endtime) AS end_time,"
            " dv.duration AS stated_duration,"
            " coalesce(api.status, dv.status) AS status,"
            " coalesce(api.error_code, dv.errorcode) AS error_code,"
            " coalesce(api.error_message, dv.errormessage) AS error_message,"
            " coalesce(api.trigger_name, dv.triggertype) AS trigger_name,"
            " dv.parentrunid,"
            " (api.run_name IS NOT NULL) AS from_api, (dv.run_name IS NOT NULL) AS from_dataverse"
            " FROM api FULL OUTER JOIN dv"
            " ON api.environment_id = dv.environment_id AND api.run_name = dv.run_name",
            [wanted, wanted],
        )

    def correlation_ids_starting(self, prefix: str) -> list[str]:
        """The first three correlation and client tracking ids starting with `prefix`."""
        found = self._frame(
            "SELECT DISTINCT id FROM ("
            " SELECT correlationid AS id FROM plugintracelogs"
            " UNION ALL SELECT correlationid FROM asyncoperations"
            " UNION ALL SELECT lower(client_tracking_id) FROM flow_api_runs)"
            " WHERE starts_with(id, ?) ORDER BY id LIMIT 3",
            [prefix],
        )
        return [str(v) for v in found["id"]]

    def longest_trace_chain(self) -> tuple[str, int] | None:
        """The correlation id of the plug-in traces with the most depths (then the most
        executions), and its executions; None without traces."""
        best = self._run(
            "SELECT correlationid, count(*) AS n FROM plugintracelogs"
            " WHERE correlationid IS NOT NULL GROUP BY correlationid"
            " ORDER BY count(DISTINCT depth) DESC, n DESC, correlationid LIMIT 1"
        )
        return (str(best[0][0]), int(best[0][1])) if best else None

    def busiest_job_correlation(self) -> tuple[str, int] | None:
        """The correlation id shared by the most system jobs, and their number; None without
        any."""
        best = self._run(
            "SELECT correlationid, count(*) AS n FROM asyncoperations"
            " WHERE correlationid IS NOT NULL GROUP BY correlationid"
            " ORDER BY n DESC, correlationid LIMIT 1"
        )
        return (str(best[0][0]), int(best[0][1])) if best else None
