"""An update_db_config_for_tenant that chooses as the default does, then stalls the worker
right after the failover's transaction commits: after the new active candidate, the generation
bump and the history row are saved, before the generation is announced in Redis and the
breaker goes half-open. A test kills the worker there. The marker file
(TB_STALL_AFTER_COMMIT_MARK) says the stall began; only the first failover stalls.

No monkeypatching: the plug-in point BREAKER_UPDATE_DB_CONFIG runs just before the failover's
transaction, and Django's own post_save signal and transaction.on_commit do the rest."""

import os
import time
from pathlib import Path

from django.db import transaction
from django.db.models.signals import post_save

from breaker_worker.failover import update_db_config_for_tenant as choose_first_healthy
from breaker_worker.models import BreakerEvent


def update_db_config_for_tenant(tenant_id, alias):
    post_save.connect(_stall_after_commit, sender=BreakerEvent, dispatch_uid="tb-stall-after-commit")
    return choose_first_healthy(tenant_id, alias)


def _stall_after_commit(sender, instance, created, **kwargs):
    if created and instance.kind == BreakerEvent.Kind.FAILOVER and instance.moved_to:
        transaction.on_commit(_stall)  # saved inside the failover's transaction: runs at its commit


def _stall():
    marker = Path(os.environ["TB_STALL_AFTER_COMMIT_MARK"])
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        time.sleep(60)  # killed long before this ends
