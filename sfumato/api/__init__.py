"""The HTTP API: FastAPI routes over the studio (jobs, store, catalog)."""
