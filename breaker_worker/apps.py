"""App configuration: registers the system checks (no DB access here: see PITFALLS)."""

from django.apps import AppConfig


class BreakerWorkerConfig(AppConfig):
    name = "breaker_worker"
    verbose_name = "Circuit breakers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, signals  # noqa: F401  (registers the system checks and receivers)
