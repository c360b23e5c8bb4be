"""Django settings: the one place that reads the environment."""

import os
from pathlib import Path

import dj_database_url

from breaker_worker.core.policy import Policy, PolicyError
from breaker_worker.db.registry import TenantDatabases

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("TENANTBREAKER_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


# Numbers from the environment that cannot be parsed: reported by the system check
# breaker_worker.E004 (which also checks their ranges), naming the variable; the default
# stands in meanwhile, so that the check can run instead of a traceback.
SETTING_ERRORS: list[str] = []


def number_from_env(name: str, default: float, whole: bool = False) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return int(text) if whole else float(text)
    except ValueError:
        SETTING_ERRORS.append(f"{name} must be {'a whole number' if whole else 'a number'}, got {text!r}")
        return default


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-insecure-key-change-me")
# Off unless asked for: Django's debug page shows the local variables of every frame, and a
# failed tenant connect has the server's password among them.
DEBUG = os.environ.get("DJANGO_DEBUG", "0") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "breaker_worker",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The admin's static files, with DEBUG off too, in runserver and gunicorn alike.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# The control DB: tenants, candidates, history, beat schedule. Tenant aliases registered with
# `tenant_db set` are added to this mapping on first use (see breaker_worker.db.registry).
_control_db = dj_database_url.parse(
    os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'control.sqlite3'}"), conn_max_age=0
)
if _control_db["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat write at once: WAL and IMMEDIATE transactions avoid "database is locked".
    _control_db["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # A file, not :memory:, so that threads in tests share the test control DB; one per test
    # session, so that two sessions in one checkout do not delete each other's.
    _control_db["TEST"] = {"NAME": str(VAR_DIR / f"test-control-{os.getpid()}.sqlite3")}
DATABASES = TenantDatabases({"default": _control_db})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"  # collectstatic (the Docker image); without it, found in the apps
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on every request about a missing one
WHITENOISE_USE_FINDERS = True

# Breaker store and Celery.
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_RESULT_EXPIRES = 3600
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redelivery of unacknowledged tasks (acks_late) after a whole worker died: a minute, not the
# default hour. Every task here takes seconds at most and is idempotent, so a redelivery of a
# slow one is harmless. kombu looks for such tasks every unacked_restore_interval seconds, but
# scans Redis only on every unacked_restore_throttle-th look (default 10): scan on every look.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": number_from_env("CELERY_VISIBILITY_TIMEOUT", 60, whole=True),
    "unacked_restore_interval": 5,
    "unacked_restore_throttle": 1,
}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"retry_policy": {"timeout": 5.0}}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Retry a lost broker every second (project.celery.Consumer), for ever: the default 100
# retries would end the worker after 100 s of a Redis outage.
CELERY_WORKER_CONSUMER = "project.celery:Consumer"
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

BREAKER_ENABLED = os.environ.get("BREAKER_ENABLED", "1") != "0"
BREAKER_MODE = os.environ.get("BREAKER_MODE", "aggregator")
try:
    BREAKER_POLICY = Policy.from_strings(
        {
            "evaluate_every": os.environ.get("BREAKER_EVALUATE_EVERY"),
            "window_seconds": os.environ.get("BREAKER_WINDOW_SECONDS"),
            "minimum_calls": os.environ.get("BREAKER_MINIMUM_CALLS"),
            "failure_rate": os.environ.get("BREAKER_FAILURE_RATE"),
            "open_seconds": os.environ.get("BREAKER_OPEN_SECONDS"),
            "probes": os.environ.get("BREAKER_PROBES"),
        }
    )
    BREAKER_POLICY_ERROR = None
except PolicyError as exc:
    # Reported by the system check breaker_worker.E003, which stops manage.py, web, worker and
    # beat at start-up with this message (an exception here would hide it behind a traceback).
    BREAKER_POLICY, BREAKER_POLICY_ERROR = Policy(), str(exc)
# Mass outage guard: when more than this percent of (at least GUARD_MIN_ALIASES) aliases trip
# within one window, the fault is treated as shared and failovers are held back.
BREAKER_GUARD_SHARE = number_from_env("BREAKER_GUARD_SHARE", 50.0)
BREAKER_GUARD_MIN_ALIASES = number_from_env("BREAKER_GUARD_MIN_ALIASES", 4, whole=True)
# Failback to an alias's preferred (first) candidate once it stayed healthy this many seconds;
# 0 turns it off (the default: moving back is a decision many operators keep for themselves).
BREAKER_FAILBACK_AFTER = number_from_env("BREAKER_FAILBACK_AFTER", 0.0)
# How often each process flushes its outcomes to Redis and polls states and generations.
BREAKER_SYNC_SECONDS = number_from_env("BREAKER_SYNC_SECONDS", 0.2)
# libpq's connect_timeout is infinite by default: a dead server would hang the caller.
BREAKER_CONNECT_TIMEOUT = number_from_env("BREAKER_CONNECT_TIMEOUT", 3, whole=True)
# Dotted path of update_db_config_for_tenant(tenant_id, alias) -> Candidate or None.
BREAKER_UPDATE_DB_CONFIG = os.environ.get(
    "BREAKER_UPDATE_DB_CONFIG", "breaker_worker.failover.update_db_config_for_tenant"
)

# Prometheus: a directory shared by every process on this host (gunicorn workers, Celery
# children), emptied before they start, makes /metrics add up their counters.
PROMETHEUS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
