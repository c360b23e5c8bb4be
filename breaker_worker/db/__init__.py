"""The query path: the database backend, the per-process breaker runtime, the alias registry."""
