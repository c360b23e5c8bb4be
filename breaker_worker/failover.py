"""The default ``update_db_config_for_tenant``: choose the server a tripped alias moves to.

Replace it with BREAKER_UPDATE_DB_CONFIG (a dotted path). Contract: called with the tenant id
and the alias, return the Candidate to make active, or None to stay where it is. The caller
(services.fail_over) saves the choice, bumps the generation and broadcasts the pool reset, so an
implementation only decides.
"""

from __future__ import annotations

import logging

from .db.probe import run_probe
from .models import Candidate, TenantDatabase

logger = logging.getLogger(__name__)


def update_db_config_for_tenant(tenant_id: int, alias: str) -> Candidate | None:
    """The first candidate after the active one (in order, wrapping) that answers a probe."""
    database = TenantDatabase.objects.get(alias=alias, tenant_id=tenant_id)
    candidates = list(database.candidates.order_by("position"))
    active_index = next((i for i, c in enumerate(candidates) if c.pk == database.active_candidate_id), -1)
    for candidate in candidates[active_index + 1 :] + candidates[: max(active_index, 0)]:
        ok, detail = run_probe(candidate, database.probe_sql)
        if ok:
            return candidate
        logger.warning("alias %s: candidate %s is not healthy: %s", alias, candidate, detail)
    return None
