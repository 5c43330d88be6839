"""`auditor lint`: an offline audit of exported solutions and flow files (no tenant, no network)."""
