"""Where one alias connects now: an immutable snapshot of its active candidate and generation."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.policy import Policy


@dataclass(frozen=True)
class Target:
    alias: str
    generation: int
    host: str
    port: int
    name: str
    user: str
    password: str = field(repr=False)
    probe_sql: str = "SELECT 1"
    policy: Policy = field(default_factory=Policy)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def connection_params(self) -> dict[str, object]:
        params: dict[str, object] = {"host": self.host, "port": self.port, "dbname": self.name, "user": self.user}
        if self.password:
            params["password"] = self.password
        return params


def load_target(alias: str) -> Target | None:
    """Read the active candidate of a registered alias from the control DB (None if unknown)."""
    from ..models import BreakerPolicy, TenantDatabase
    from ..policies import effective_or_default

    database = TenantDatabase.objects.select_related("active_candidate").filter(alias=alias).first()
    if database is None or database.active_candidate is None:
        return None
    candidate = database.active_candidate
    overrides = BreakerPolicy.objects.filter(database=database).first()
    return Target(
        alias=alias,
        generation=database.generation,
        host=candidate.host,
        port=candidate.port,
        name=candidate.name,
        user=candidate.user,
        password=candidate.password,
        probe_sql=database.probe_sql,
        policy=effective_or_default(alias, overrides.overrides() if overrides else {}),
    )
