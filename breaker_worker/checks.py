"""Django system checks for breaker settings, with stable ids."""

from django.conf import settings
from django.core.checks import Error, register
from django.utils.module_loading import import_string

MODES = ("aggregator", "sequential")

# Numeric settings outside the policy: setting -> (low, high), both inclusive.
NUMBER_RANGES = {
    "BREAKER_GUARD_SHARE": (1, 100),
    "BREAKER_GUARD_MIN_ALIASES": (1, 1_000_000),
    "BREAKER_FAILBACK_AFTER": (0, 7 * 86400),
    # libpq takes 0 as "wait for ever": exactly what the timeout is there to prevent.
    "BREAKER_CONNECT_TIMEOUT": (1, 600),
}


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
    problems = list(getattr(settings, "SETTING_ERRORS", []))
    for name, (low, high) in NUMBER_RANGES.items():
        value = getattr(settings, name)
        if not low <= value <= high:
            problems.append(f"{name} must be between {low} and {high}, got {value!r}")
    errors += [
        Error(problem, hint="Fix this environment variable (see README, Configuration).", id="breaker_worker.E004")
        for problem in problems
    ]
    try:
        chooser = import_string(settings.BREAKER_UPDATE_DB_CONFIG)
        problem = None if callable(chooser) else "is not callable"
    except ImportError as exc:
        problem = f"cannot be imported ({exc})"
    if problem:
        errors.append(
            Error(
                f"BREAKER_UPDATE_DB_CONFIG {settings.BREAKER_UPDATE_DB_CONFIG!r} {problem}",
                hint="Give the dotted path of a function update_db_config_for_tenant(tenant_id, alias).",
                id="breaker_worker.E005",
            )
        )
    return errors


def refuse_to_start_if_misconfigured() -> None:
    """For processes Django's check framework does not cover (gunicorn, celery worker, beat)."""
    from django.core import checks

    serious = [message for message in checks.run_checks() if message.is_serious()]
    if serious:
        raise SystemExit("refusing to start:\n" + "\n".join(str(message) for message in serious))
