"""Control DB models: tenants, their aliases and candidate servers, and breaker history."""

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

ALIAS_PATTERN = r"^(?P<tenant>[0-9]+)-(?P<name>[A-Za-z0-9_]+)$"


class Tenant(models.Model):
    id = models.PositiveIntegerField(primary_key=True)
    name = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return self.name or f"tenant {self.id}"


class TenantDatabase(models.Model):
    """One tenant alias (``1-default``): its candidates, its active one and its generation."""

    alias = models.CharField(
        max_length=100,
        unique=True,
        validators=[RegexValidator(ALIAS_PATTERN, "An alias is <tenant id>-<name>, e.g. 1-default.")],
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="databases")
    active_candidate = models.ForeignKey(
        "Candidate", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Bumped by every change of the active candidate; processes reconnect when behind.
    generation = models.PositiveIntegerField(default=1)
    # The breaker epoch whose failover has been carried out: makes failover idempotent.
    failover_epoch = models.PositiveIntegerField(default=0)
    probe_sql = models.TextField(
        "probe query",
        default="SELECT 1",
        help_text="Query that proves this server can serve this tenant (used by probes and failover).",
    )

    class Meta:
        ordering = ["alias"]

    def __str__(self) -> str:
        return self.alias


class Candidate(models.Model):
    """One server an alias may point at. The password is write-only in every interface."""

    database = models.ForeignKey(TenantDatabase, on_delete=models.CASCADE, related_name="candidates")
    position = models.PositiveIntegerField()
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(65535)])
    name = models.CharField("database name", max_length=63)
    user = models.CharField(max_length=63)
    password = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["database", "position"]
        constraints = [models.UniqueConstraint(fields=["database", "position"], name="candidate_position_unique")]

    def __str__(self) -> str:
        return f"{self.host}:{self.port}/{self.name}"

    def __repr__(self) -> str:
        return f"<Candidate {self.user}@{self.host}:{self.port}/{self.name}>"


class BreakerEvent(models.Model):
    """One line of a breaker's history: a transition or a failover, with its time and reason."""

    class Kind(models.TextChoices):
        TRANSITION = "transition"
        FAILOVER = "failover"
        PROBE = "probe"  # an operator's probe and its result (the evaluator's probes are not recorded)

    database = models.ForeignKey(TenantDatabase, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(db_index=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.TRANSITION)
    from_state = models.CharField(max_length=20)
    to_state = models.CharField(max_length=20)
    reason = models.TextField()
    epoch = models.PositiveIntegerField()
    generation = models.PositiveIntegerField()
    failure_rate = models.FloatField(null=True, blank=True)
    calls = models.PositiveIntegerField(null=True, blank=True)
    actor = models.CharField(max_length=150, default="evaluator")
    # Failover events only: the server the alias moved to, empty when it stayed.
    moved_to = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.database.alias}: {self.from_state} -> {self.to_state} ({self.reason})"


class Breaker(TenantDatabase):
    """An alias seen as a breaker in the admin: live state, history, operator actions. Each
    action has its own permission."""

    class Meta:
        proxy = True
        permissions = [
            ("probe_breaker", "Can probe a breaker now"),
            ("force_open_breaker", "Can force a breaker open"),
            ("reset_breaker", "Can reset a breaker to closed"),
            ("disable_breaker", "Can disable a breaker"),
            ("fail_over_breaker", "Can fail a breaker over now"),
            ("test_connection_breaker", "Can test a breaker's candidate connections"),
        ]


class BreakerPolicy(models.Model):
    """One alias's overrides of the default policy (the BREAKER_* settings); an empty field
    inherits the default. Saving one reaches the running evaluator and every process within a
    poll, without a restart."""

    OVERRIDABLE = (
        "window_seconds",
        "window_calls",
        "minimum_calls",
        "failure_rate",
        "slow_call_seconds",
        "slow_call_rate",
        "open_seconds",
        "max_open_seconds",
        "probes",
        "connect_failures",
    )

    database = models.OneToOneField(TenantDatabase, on_delete=models.CASCADE, related_name="policy_override")
    window_seconds = models.PositiveIntegerField(null=True, blank=True, help_text="seconds")
    window_calls = models.PositiveIntegerField(
        null=True, blank=True, help_text="0: time-based window; N: the last N calls"
    )
    minimum_calls = models.PositiveIntegerField(null=True, blank=True)
    failure_rate = models.FloatField(null=True, blank=True, help_text="percent")
    slow_call_seconds = models.FloatField(null=True, blank=True, help_text="seconds")
    slow_call_rate = models.FloatField(null=True, blank=True, help_text="percent")
    open_seconds = models.FloatField(null=True, blank=True, help_text="first open wait, seconds")
    max_open_seconds = models.FloatField(null=True, blank=True, help_text="longest open wait, seconds")
    probes = models.PositiveIntegerField(null=True, blank=True, help_text="successful probe queries to close")
    connect_failures = models.PositiveIntegerField(
        null=True, blank=True, help_text="consecutive failed connects that trip a quiet alias (0: off)"
    )

    def __str__(self) -> str:
        return f"policy of {self.database.alias}"

    def overrides(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in self.OVERRIDABLE if getattr(self, name) is not None}

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from .core.policy import PolicyError
        from .policies import effective

        try:
            effective(self.overrides())
        except PolicyError as exc:
            field = next((name for name in self.OVERRIDABLE if str(exc).startswith(name)), None)
            raise ValidationError({field: str(exc)} if field else str(exc)) from None
