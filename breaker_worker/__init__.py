"""tenantbreaker: a circuit breaker for the databases of a multi-tenant Django service."""
