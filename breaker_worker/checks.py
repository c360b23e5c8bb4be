"""Django system checks for breaker settings, with stable ids."""

from django.conf import settings
from django.core.checks import Error, register

MODES = ("aggregator", "sequential")


@register()
def check_breaker_settings(app_configs=None, **kwargs):
    errors = []
    if settings.BREAKER_MODE not in MODES:
        errors.append(
            Error(
                f"BREAKER_MODE is {settings.BREAKER_MODE!r}",
                hint=f"Set BREAKER_MODE to one of: {', '.join(MODES)}.",
                id="breaker_worker.E001",
            )
        )
    if settings.BREAKER_SYNC_SECONDS <= 0 or settings.BREAKER_SYNC_SECONDS > 10:
        errors.append(
            Error(
                f"BREAKER_SYNC_SECONDS is {settings.BREAKER_SYNC_SECONDS}",
                hint="Use a value greater than 0 and at most 10 seconds.",
                id="breaker_worker.E002",
            )
        )
    if settings.BREAKER_POLICY_ERROR:
        errors.append(
            Error(
                f"invalid breaker policy in the environment: {settings.BREAKER_POLICY_ERROR}",
                hint="Fix the BREAKER_* environment variable named above (see README, Configuration).",
                id="breaker_worker.E003",
            )
        )
    return errors


def refuse_to_start_if_misconfigured() -> None:
    """For processes Django's check framework does not cover (gunicorn, celery worker, beat)."""
    from django.core import checks

    serious = [message for message in checks.run_checks() if message.is_serious()]
    if serious:
        raise SystemExit("refusing to start:\n" + "\n".join(str(message) for message in serious))
