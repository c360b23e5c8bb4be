"""Saving or deleting an alias's policy tells every process (the policy version in Redis)."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import BreakerPolicy


@receiver([post_save, post_delete], sender=BreakerPolicy)
def announce_policy_change(sender, instance, **kwargs) -> None:
    from .services import get_store

    get_store().bump_policy_version()
