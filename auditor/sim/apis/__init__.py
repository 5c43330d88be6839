"""The APIs the simulator serves, one module each, behind the gate of `auditor.sim.app`.

- `identity`: OIDC discovery and the v2.0 token endpoint (the tokens are `auditor.sim.identity`'s);
- `environments`: the Power Platform admin (BAP) environments list;
- `dataverse`: the Dataverse Web API (OData over the tenant's tables, `auditor.sim.odata`);
- `flows` and `flow_runs`: the flow API's flows, and their runs and run actions.

`gate` says which API a request is for and what the gate answers when it refuses one;
`common` holds the replies, paging and the context every handler reads.
"""
