"""FastAPI service: REST, SSE, auth, dashboard."""
