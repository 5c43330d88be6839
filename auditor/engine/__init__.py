"""The row-level reductions of the analysis, written once and run by the engine that
holds the rows: DuckDB embedded (the default) or Spark (docs/large-tenants.md)."""
