"""Saving or deleting an alias's policy tells every process (the policy version in Redis)."""

import logging

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import BreakerPolicy
from .policies import RELOAD_SECONDS
from .store import StoreUnavailableError

logger = logging.getLogger(__name__)


@receiver([post_save, post_delete], sender=BreakerPolicy)
def announce_policy_change(sender, instance, **kwargs) -> None:
    # After the commit: a process that reloads at a bump made before it would read the old row
    # and then believe itself up to date.
    transaction.on_commit(bump_policy_version)


def bump_policy_version() -> None:
    from .services import get_store

    try:
        get_store().bump_policy_version()
    except StoreUnavailableError as exc:
        logger.error(
            "a policy was saved but Redis could not be told (%s): processes take it within %ss", exc, RELOAD_SECONDS
        )
