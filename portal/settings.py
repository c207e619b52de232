"""Settings for the portal, every value from the environment.

Development needs nothing set: SQLite in the work tree and Celery tasks run inline.
Production sets DEBUG=0, SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL and REDIS_URL.
A malformed value stops start-up with a message naming the variable.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use 1/0, true/false, yes/no or on/off.")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum}.")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum}.")
    return value


_RATE_PERIODS = {"s": 1.0, "sec": 1.0, "second": 1.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0}


def env_rate(name: str, default: str) -> tuple[int, float]:
    """Parse a request rate such as "3/s" or "240/min" into (requests, period in seconds)."""
    raw = os.environ.get(name) or default
    count, _, unit = raw.strip().partition("/")
    if not count.strip().isdigit() or int(count) < 1 or unit.strip().lower() not in _RATE_PERIODS:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a rate; write it as N/s, N/min or N/hour with N >= 1.")
    return int(count), _RATE_PERIODS[unit.strip().lower()]


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def database_from_url(name: str, url: str) -> dict:
    scheme = urlsplit(url).scheme
    if scheme not in {"postgres", "postgresql", "pgsql", "sqlite"}:
        raise ImproperlyConfigured(
            f"{name}={url!r}: unsupported scheme {scheme!r}; use postgres://user@host:port/db or sqlite:///path."
        )
    try:
        config = environ.Env.db_url_config(url)
    except Exception as exc:  # environ raises several types for malformed URLs
        raise ImproperlyConfigured(f"{name}={url!r} is not a valid database URL: {exc}") from None
    if scheme != "sqlite" and not config.get("NAME"):
        raise ImproperlyConfigured(f"{name}={url!r} names no database.")
    return config


def redis_url(name: str, url: str) -> str:
    if url and urlsplit(url).scheme not in {"redis", "rediss"}:
        raise ImproperlyConfigured(f"{name}={url!r} must start with redis:// or rediss://.")
    return url


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "pgtrigger",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "accounts",
    "dossiers",
    "reviews",
    "webhooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "accounts.middleware.TwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {"default": database_from_url("DATABASE_URL", DATABASE_URL)}
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = redis_url("REDIS_URL", env_str("REDIS_URL"))
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dossiers:candidate_list"
LOGOUT_REDIRECT_URL = "login"

# Two-factor (django-otp TOTP): optional for everyone; when required, approvers (and admins) must enrol.
MFA_REQUIRED_FOR_APPROVERS = env_bool("MFA_REQUIRED_FOR_APPROVERS", False)
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "Repurposing review portal")

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
IMPORT_UPLOAD_MAX_BYTES = env_int("IMPORT_UPLOAD_MAX_BYTES", 200 * 1024 * 1024, minimum=1)

# Email: console in development; SMTP when EMAIL_HOST is set.
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "portal@localhost")
# Review emails (reviews/notifications.py): links are absolute from SITE_URL; a row claimed for
# sending longer ago than the lease is taken as a dead sender's and retried with the same Message-ID.
NOTIFICATION_SENDING_LEASE = env_int("NOTIFICATION_SENDING_LEASE", 300, minimum=1)
if NOTIFICATION_SENDING_LEASE <= 6 * EMAIL_TIMEOUT:  # a send is a handful of SMTP commands, each may take a timeout
    raise ImproperlyConfigured(
        f"NOTIFICATION_SENDING_LEASE={NOTIFICATION_SENDING_LEASE} must exceed 6 × EMAIL_TIMEOUT "
        f"({6 * EMAIL_TIMEOUT}s), or a slow send would look dead and be sent twice."
    )
NOTIFICATION_MAX_ATTEMPTS = env_int("NOTIFICATION_MAX_ATTEMPTS", 8, minimum=1)
REVIEW_DUE_DAYS = env_int("REVIEW_DUE_DAYS", 14, minimum=1)

# External evidence sources (dossiers/sources/): base URLs, keys, contact, timeouts, retries, rate limits.
# Rates are shared by all workers through Redis when REDIS_URL is set; the defaults are the published limits.
SOURCES_TOOL_NAME = env_str("SOURCES_TOOL_NAME", "repurposing-portal")
SOURCES_CONTACT_EMAIL = env_str("SOURCES_CONTACT_EMAIL", DEFAULT_FROM_EMAIL)
SOURCES_CONNECT_TIMEOUT = env_float("SOURCES_CONNECT_TIMEOUT", 5.0, minimum=0.001)
SOURCES_READ_TIMEOUT = env_float("SOURCES_READ_TIMEOUT", 30.0, minimum=0.001)
SOURCES_MAX_RETRIES = env_int("SOURCES_MAX_RETRIES", 4)
SOURCES_BACKOFF_BASE = env_float("SOURCES_BACKOFF_BASE", 1.0)
SOURCES_BACKOFF_MAX = env_float("SOURCES_BACKOFF_MAX", 30.0)
SOURCES_MAX_TOTAL_WAIT = env_float("SOURCES_MAX_TOTAL_WAIT", 120.0)
SOURCES_RATE_LIMIT_MAX_WAIT = env_float("SOURCES_RATE_LIMIT_MAX_WAIT", 60.0)
CLINICALTRIALS_BASE_URL = env_str("CLINICALTRIALS_BASE_URL", "https://clinicaltrials.gov/api/v2").rstrip("/")
CLINICALTRIALS_RATE_LIMIT = env_rate("CLINICALTRIALS_RATE_LIMIT", "50/min")
# Caps on what one refresh reads (a run stopped by a cap is "partial", with the counts): pages of 100 studies,
# PubMed ids (esearch paged 500 at a time; NCBI serves at most 10,000 of a search).
CLINICALTRIALS_MAX_PAGES = env_int("CLINICALTRIALS_MAX_PAGES", 50, minimum=1)
PUBMED_MAX_RECORDS = env_int("PUBMED_MAX_RECORDS", 1000, minimum=1)
if PUBMED_MAX_RECORDS > 10000:
    raise ImproperlyConfigured(f"PUBMED_MAX_RECORDS={PUBMED_MAX_RECORDS}: NCBI serves at most 10000 ids of a search.")
NCBI_EUTILS_BASE_URL = env_str("NCBI_EUTILS_BASE_URL", "https://eutils.ncbi.nlm.nih.gov/entrez/eutils").rstrip("/")
NCBI_API_KEY = env_str("NCBI_API_KEY")
NCBI_RATE_LIMIT = env_rate("NCBI_RATE_LIMIT", "10/s" if NCBI_API_KEY else "3/s")
OPENFDA_BASE_URL = env_str("OPENFDA_BASE_URL", "https://api.fda.gov").rstrip("/")
OPENFDA_API_KEY = env_str("OPENFDA_API_KEY")
OPENFDA_RATE_LIMIT = env_rate("OPENFDA_RATE_LIMIT", "240/min")
RXNAV_BASE_URL = env_str("RXNAV_BASE_URL", "https://rxnav.nlm.nih.gov").rstrip("/")
RXNAV_RATE_LIMIT = env_rate("RXNAV_RATE_LIMIT", "20/s")

# Celery: a Redis broker when configured, otherwise tasks run inline in the caller.
CELERY_BROKER_URL = redis_url("CELERY_BROKER_URL", env_str("CELERY_BROKER_URL", REDIS_URL))
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 600, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 540, minimum=1)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_TASK_TIME_LIMIT * 2,
    # A killed worker's unacknowledged messages go back to the queue once older than the visibility
    # timeout; workers look for them every BROKER_RESTORE_INTERVAL seconds (kombu's default is ~100 s).
    "unacked_restore_interval": env_int("BROKER_RESTORE_INTERVAL", 10, minimum=1),
    "unacked_restore_throttle": 1,
}
CELERY_TIMEZONE = TIME_ZONE
# One beat process only (`celery -A portal beat`); each job is idempotent, so a missed or doubled run is harmless.
CELERY_BEAT_SCHEDULE = {
    "notifications-sweep": {"task": "reviews.notifications_sweep", "schedule": 60.0},
    "signatures-sweep": {"task": "reviews.signatures_sweep", "schedule": crontab(minute=40)},
    "notifications-digest": {
        "task": "reviews.digests_send",
        "schedule": crontab(hour=env_int("NOTIFICATION_DIGEST_HOUR", 7), minute=0),
    },
    "reminders-overdue": {
        "task": "reviews.reminders_create",
        "schedule": crontab(hour=env_int("REMINDER_HOUR", 6), minute=30),
    },
    "evidence-refresh-nightly": {
        "task": "dossiers.refresh_open_candidates",
        "schedule": crontab(hour=env_int("EVIDENCE_REFRESH_HOUR", 2), minute=15),
    },
    "evidence-refresh-dispatch": {
        "task": "dossiers.refresh_dispatch",
        "schedule": env_float("EVIDENCE_REFRESH_DISPATCH_INTERVAL", 30.0, minimum=1.0),
    },
    "evidence-refresh-sweep": {"task": "dossiers.refresh_runs_sweep", "schedule": 60.0},
    "evidence-alerts-sweep": {
        "task": "dossiers.evidence_alerts_sweep",
        "schedule": float(env_int("EVIDENCE_ALERT_GRACE", 300, minimum=1)),
    },
    "webhooks-sweep": {"task": "webhooks.deliveries_sweep", "schedule": 60.0},
}
# Evidence refresh (dossiers/tasks.py): no task is sent with a countdown (it would outlive the visibility
# timeout). The nightly job creates the runs; the dispatcher sends them, keeping at most `BATCH` candidate
# or drug tasks sent and unfinished, every EVIDENCE_REFRESH_DISPATCH_INTERVAL s; the rate limiter paces requests.
# Significant changes go to reviews.evidence_alerts (imported by workers) on EVIDENCE_ALERT_QUEUE.
EVIDENCE_REFRESH_BATCH = env_int("EVIDENCE_REFRESH_BATCH", 50, minimum=1)
# The sweep ends, as "lost", runs still running `RUN_LIMIT` s after they started (the task was killed at its
# time limit, or its worker died) and runs whose task was sent `QUEUE_LIMIT` s ago but never started.
EVIDENCE_REFRESH_RUN_LIMIT = env_int("EVIDENCE_REFRESH_RUN_LIMIT", CELERY_TASK_TIME_LIMIT + 60, minimum=1)
EVIDENCE_REFRESH_QUEUE_LIMIT = env_int("EVIDENCE_REFRESH_QUEUE_LIMIT", 3 * CELERY_TASK_TIME_LIMIT + 60, minimum=1)
if EVIDENCE_REFRESH_RUN_LIMIT <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        f"EVIDENCE_REFRESH_RUN_LIMIT={EVIDENCE_REFRESH_RUN_LIMIT} must exceed CELERY_TASK_TIME_LIMIT "
        f"({CELERY_TASK_TIME_LIMIT}), or the sweep would end runs a live task is still working on."
    )
EVIDENCE_ALERT_QUEUE = env_str("EVIDENCE_ALERT_QUEUE", "celery")
# An alert not told `GRACE` seconds after its change was found is sent again by the sweep (the reviews side
# tells each change once); changes older than `MAX_AGE` seconds are no longer sent.
EVIDENCE_ALERT_GRACE = env_int("EVIDENCE_ALERT_GRACE", 300, minimum=1)
EVIDENCE_ALERT_MAX_AGE = env_int("EVIDENCE_ALERT_MAX_AGE", 7 * 24 * 3600, minimum=1)
# Task modules outside an app's tasks.py (autodiscovery finds only those).
CELERY_IMPORTS = ["reviews.evidence_alerts", "dossiers.api_imports"]

# Outgoing webhooks (webhooks/): attempts per delivery, backoff between them (seconds, with jitter), timeout.
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8, minimum=1)
WEBHOOK_BACKOFF_BASE = env_float("WEBHOOK_BACKOFF_BASE", 2.0)
WEBHOOK_BACKOFF_MAX = env_float("WEBHOOK_BACKOFF_MAX", 600.0)
WEBHOOK_TIMEOUT = env_float("WEBHOOK_TIMEOUT", 10.0, minimum=0.001)
# The sweep re-sends a pending delivery overdue this long; an admin may replay one overdue the second.
WEBHOOK_SWEEP_GRACE = env_int("WEBHOOK_SWEEP_GRACE", 60, minimum=1)
WEBHOOK_STUCK_AFTER = env_int("WEBHOOK_STUCK_AFTER", 900, minimum=1)

# API: personal tokens (accounts/) or the browser session; one error shape; throttles per token and per user.
# Rates are "N/s", "N/min" or "N/hour" (DRF reads the unit's first letter), checked so a typo fails at start.
API_RATE_TOKEN = env_str("API_RATE_TOKEN", "600/min")
API_RATE_USER = env_str("API_RATE_USER", "1200/min")
API_RATE_ANON = env_str("API_RATE_ANON", "60/min")
for _name, _rate in {
    "API_RATE_TOKEN": API_RATE_TOKEN,
    "API_RATE_USER": API_RATE_USER,
    "API_RATE_ANON": API_RATE_ANON,
}.items():
    env_rate(_name, _rate)
API_PAGE_SIZE = env_int("API_PAGE_SIZE", 50, minimum=1)
API_MAX_PAGE_SIZE = env_int("API_MAX_PAGE_SIZE", 500, minimum=1)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "accounts.authentication.TokenScopePermission",
    ],
    "DEFAULT_PAGINATION_CLASS": "portal.api.pagination.PagePagination",
    "PAGE_SIZE": API_PAGE_SIZE,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": [
        "portal.api.throttling.TokenRateThrottle",
        "portal.api.throttling.UserRateThrottle",
        "portal.api.throttling.AnonRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {"token": API_RATE_TOKEN, "user": API_RATE_USER, "anon": API_RATE_ANON},
    "EXCEPTION_HANDLER": "portal.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Repurposing review portal API",
    "DESCRIPTION": "Everything a person does in the pages, for integrations. Authenticate with a personal "
    "token from your profile page (`Authorization: Bearer prt_…`) or the browser session.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a "status" or "severity" choice set; name each enum after its model.
    "ENUM_NAME_OVERRIDES": {
        "CandidateStatusEnum": "dossiers.models.Candidate.Status",
        "DataGapStatusEnum": "dossiers.models.DataGap.Status",
        "ConditionStatusEnum": "dossiers.models.GuardrailCondition.Status",
        "DataGapSeverityEnum": "dossiers.models.DataGap.Severity",
        "InteractionSeverityEnum": "dossiers.models.DrugInteraction.Severity",
        "DecisionEnum": "dossiers.models.Decision",
        "EvidenceLevelEnum": "dossiers.models.EvidenceLevel",
        "DecisionStageEnum": "dossiers.models.DecisionStage",
        "PredictionSourceEnum": "dossiers.models.PredictionSource",
        "RefreshSourceEnum": "dossiers.models.RefreshRun.Source",
        "RefreshStatusEnum": "dossiers.models.RefreshRun.Status",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "portal.api.schema.add_error_responses",
    ],
}

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
