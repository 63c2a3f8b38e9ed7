"""Results: the typed results store, metrics and aggregation (jobs -> results store -> aggregation)."""
