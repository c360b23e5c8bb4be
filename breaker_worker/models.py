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
