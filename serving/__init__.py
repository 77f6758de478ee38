"""FastAPI service: routers, auth, model store with hot swap, event intake, metrics."""
