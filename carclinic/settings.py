"""carclinic settings: one module, every deployment difference read from the environment.

Embedded defaults (SQLite, a filesystem Celery broker) let the product run on a laptop with no
servers; DATABASE_URL and CELERY_BROKER_URL switch to PostgreSQL and Redis.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
# Where the embedded defaults keep their files (SQLite, the filesystem broker, saved mail). Importing the
# settings creates nothing: `carclinic.local_folders.make_local_folders()` does, from manage.py, wsgi/asgi
# and the Celery app, for the defaults actually in use.
VAR_DIR = Path(os.environ.get("CARCLINIC_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.")
    # Never a key from the repository (anyone could sign sessions with it): one per checkout, made on first use.
    from carclinic.dev_secret import checkout_secret_key

    SECRET_KEY = checkout_secret_key(VAR_DIR / "secret_key")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "django_celery_beat",
    "axes",
    "csp",
    "staff",
    "patients",
    "journeys",
    "notifications",
    "apiclients",
    "alerts",
    "api",
    "manufacturing",
    "planning",
    "followup",
    "contracts",
    "registry",
]

# API-key requests to /api/v1/ are answered by the key or refused, never by a session: their cookies are
# ignored and carclinic.middleware.X (the usual X) passes them over (see carclinic/middleware.py).
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "carclinic.headers.SecurityHeaders",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "carclinic.middleware.IgnoreCookiesOnApiKeyRequests",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "carclinic.middleware.Authentication",
    "carclinic.middleware.Messages",
    "carclinic.middleware.IdleSignOut",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, as django-axes asks: it must see the outcome of authentication.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "carclinic.urls"
WSGI_APPLICATION = "carclinic.wsgi.application"

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
                "staff.context_processors.clinic_permissions",
                "notifications.context_processors.unread_notifications",
                "alerts.context_processors.open_alerts",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'carclinic.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the Celery worker write to the same file. WAL lets readers go on while
    # one writes; IMMEDIATE takes the write lock at BEGIN, so a transaction waits (busy_timeout)
    # instead of failing half-way with "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Identity and access ------------------------------------------------------------------
AUTH_USER_MODEL = "staff.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "staff.passwords.NotContainingUsername"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Failed-login lockout: five wrong passwords lock that user name from that address for 30 minutes.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = float(os.environ.get("AXES_COOLOFF_HOURS", "0.5"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Password spraying (one password, many names) from one address: refused after this many wrong passwords
# within the cool-off time, whatever the names (staff/login.py).
LOGIN_FAILURES_PER_ADDRESS = int(os.environ.get("LOGIN_FAILURES_PER_ADDRESS", "20"))
# The client's address: REMOTE_ADDR, or behind N proxies of ours the N-th from the right of X-Forwarded-For.
CLINIC_TRUSTED_PROXIES = int(os.environ.get("CLINIC_TRUSTED_PROXIES", "0"))
AXES_CLIENT_IP_CALLABLE = "staff.client_ip.client_ip"

# Idle sign-out: a ward computer left open must not stay signed in.
SESSION_IDLE_TIMEOUT_SECONDS = int(os.environ.get("SESSION_IDLE_TIMEOUT_SECONDS", str(15 * 60)))
SESSION_COOKIE_AGE = SESSION_IDLE_TIMEOUT_SECONDS
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# Messages stay on the server: "Recorded and signed: … for <patient's name>" must not travel in a cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# Reverting a record from its history page would skip the services (their checks, version and event).
SIMPLE_HISTORY_REVERT_DISABLED = True

# --- Time -----------------------------------------------------------------------------------
# Stored in UTC; shown and reasoned about ("Day +N", "the morning of the day") in the clinic's zone.
USE_TZ = True
TIME_ZONE = os.environ.get("CLINIC_TIME_ZONE", "Europe/Berlin")
LANGUAGE_CODE = "en-gb"
USE_I18N = True

# --- Static files -------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# collectstatic gathers files here for production; in development whitenoise serves from the finders.
STATIC_ROOT = None if DEBUG else BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG and env_bool("STATIC_MANIFEST", True)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- HTTPS (assumed in production) ---------------------------------------------------------
HTTPS = env_bool("DJANGO_HTTPS", not DEBUG)
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# Content-Security-Policy (django-csp): scripts only from our own static files, or inline with the request's
# nonce ({{ request.csp_nonce }}); there is no inline script today. Inline *styles* are allowed: the admin and
# the vendored Swagger UI set style attributes, and a style cannot run code. Nothing is framed or embedded.
from csp.constants import NONCE, NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "carclinic API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # --- the REST API's own words (api/) ---
    "DESCRIPTION": (
        "Patient journeys of the CD19 CAR-T programme, for hospital systems, payers and registries.\n\n"
        "**Keys.** An administrator makes a client with `manage.py create_api_client NAME --role viewer` "
        "(or `--role integration` to record step completions) and hands over the key it prints once. "
        "Send it as `Authorization: Bearer <key>`. A new client sees no patient until the administrator grants "
        "patients to it in the admin (or makes it with `--all-patients`).\n\n"
        "**Writes are for keys.** A signed-in browser session may read, but recording a step takes a key: people "
        "record steps on the step's page, signed with their password.\n\n"
        "**This document is public.** `/api/schema/` and `/api/docs/` answer without a key or sign-in: they "
        "describe the calls and hold no patient data, and an integrator reads them before a key is made.\n\n"
        "**Incremental sync.** List `/api/v1/patients/`, follow `next` to the end, keep `sync_from`; next time "
        "pass it as `updated_since`. You may see a patient twice, never miss one.\n\n"
        "**Completing a step safely.** Read the step's `etag`, POST to `/api/v1/steps/{id}/complete/` with "
        "`If-Match: <etag>` and an `Idempotency-Key`. 409 means someone changed it first (the body shows it); "
        "a retry with the same key returns the first answer.\n\n"
        '**Errors** are `{status, code, detail, field_errors}`; 404 also means "not visible to you"; '
        "429 comes with Retry-After."
    ),
    # For Spectral's spectral:oas rules (tests/api/test_spectral.py): a server (this one), a contact, the tag.
    "SERVERS": [{"url": "/", "description": "This carclinic installation"}],
    "CONTACT": {"name": "The clinic's carclinic administrator"},
    "TAGS": [{"name": "v1", "description": "Patients, their journeys and steps."}],
    "ENUM_NAME_OVERRIDES": {
        "StepStatusEnum": "journeys.models.StepStatus",
        "JourneyStatusEnum": "journeys.models.JourneyStatus",
        "StageStatusEnum": "journeys.models.StageStatus",
        "StageNumberEnum": "journeys.models.StageNumber",
    },
}

# Per-client API throttling counts requests here; with several web workers set CACHE_URL to Redis
# (e.g. redis://127.0.0.1:6379/1) so they count together. Unset: per-process memory, Django's default.
# Short socket timeouts: a Redis that hangs must cost a request milliseconds, not the worker (carclinic/cache.py
# then goes on with the database).
CACHES = {
    "default": {
        "BACKEND": "carclinic.cache.RedisCache",
        "LOCATION": os.environ["CACHE_URL"],
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
    if os.environ.get("CACHE_URL")
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
# How long a web worker may answer from the API client row it verified in-process (apiclients/services.py
# `key_cache_seconds`). Only with a shared cache: each request still reads the key's generation there, so a
# revocation through the services or the admin takes effect at once; this bounds changes made behind
# their back. Without CACHE_URL there is nothing shared to read the generation from: 0, never kept.
API_KEY_CACHE_SECONDS = int(os.environ.get("API_KEY_CACHE_SECONDS", "5" if os.environ.get("CACHE_URL") else "0"))

# The API's status call runs as a server-side prepared statement, planned once per database connection
# (journeys/status.py). Set 0 when a transaction-mode pooler (PgBouncer) stands in front of PostgreSQL.
STATUS_PREPARED_STATEMENTS = env_bool("STATUS_PREPARED_STATEMENTS", True)

# --- Pages that refresh themselves ----------------------------------------------------------------
# How often open dashboards and ward lists ask for fresh rows.
CLINIC_POLL_SECONDS = int(os.environ.get("CLINIC_POLL_SECONDS", "20"))
# How often an open page asks for the unread count; reminders go out once a minute at most.
NOTIFICATION_POLL_SECONDS = int(os.environ.get("NOTIFICATION_POLL_SECONDS", "60"))

# --- Follow-up (stage 5 and years 6–15) -------------------------------------------------------------------
# Product defaults a clinic may change. B-cell aplasia: CD19+ below 1 /µL (the lower limit of detection in
# Mackensen et al., Nat Med 2022, where B cells returned after ~110 days on average).
FOLLOWUP_B_CELL_APLASIA_BELOW_PER_UL = os.environ.get("FOLLOWUP_B_CELL_APLASIA_BELOW_PER_UL", "1")
# Hypogammaglobulinaemia: IgG below 4 g/L, the usual replacement trigger after CD19 CAR-T (Hill et al., Blood 2019).
FOLLOWUP_IGG_LOW_BELOW_G_L = os.environ.get("FOLLOWUP_IGG_LOW_BELOW_G_L", "4")
# The clinic's address as patients reach it from outside: the start of the links in their e-mails.
CLINIC_BASE_URL = os.environ.get("CLINIC_BASE_URL", "http://localhost:8000").rstrip("/")
# A questionnaire link e-mailed to a patient works this many days, once.
FOLLOWUP_QUESTIONNAIRE_DAYS = int(os.environ.get("FOLLOWUP_QUESTIONNAIRE_DAYS", "30"))
# Requests to the questionnaire page per client address, and answers tried per link, per hour.
FOLLOWUP_QUESTIONNAIRE_TRIES_PER_IP = int(os.environ.get("FOLLOWUP_QUESTIONNAIRE_TRIES_PER_IP", "30"))
FOLLOWUP_QUESTIONNAIRE_TRIES_PER_LINK = int(os.environ.get("FOLLOWUP_QUESTIONNAIRE_TRIES_PER_LINK", "10"))

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "celery-broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Where the exchange bindings go; kombu's default is ./control in whatever folder the worker started.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # Redis: a task whose worker died is handed to another after this many seconds (acks_late work).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# --- Reminders and the overdue scan (notifications/) --------------------------------------------
# Every threshold is read from the environment; the defaults are the clinic's usual ones.
REMINDER_SCAN_INTERVAL_SECONDS = int(os.environ.get("REMINDER_SCAN_INTERVAL_SECONDS", "60"))
REMINDER_ESCALATION_AFTER_HOURS = int(os.environ.get("REMINDER_ESCALATION_AFTER_HOURS", "24"))
REMINDER_UPCOMING_LEAD_HOURS = int(os.environ.get("REMINDER_UPCOMING_LEAD_HOURS", "48"))
REMINDER_MORNING_TIME = os.environ.get("REMINDER_MORNING_TIME", "07:00")  # clinic time, follows DST
REMINDER_DIGEST_TIME = os.environ.get("REMINDER_DIGEST_TIME", "07:30")  # clinic time, follows DST
REMINDER_PLANNING_DAYS = int(os.environ.get("REMINDER_PLANNING_DAYS", "7"))
REMINDER_MAX_ATTEMPTS = int(os.environ.get("REMINDER_MAX_ATTEMPTS", "5"))
REMINDER_RETRY_BASE_SECONDS = int(os.environ.get("REMINDER_RETRY_BASE_SECONDS", "60"))
REMINDER_CLAIM_TIMEOUT_SECONDS = int(os.environ.get("REMINDER_CLAIM_TIMEOUT_SECONDS", "300"))
REMINDER_WEBHOOK_URL = os.environ.get("REMINDER_WEBHOOK_URL", "")
# The domain part of reminder e-mails' Message-ID (a retried message keeps its id, so mail systems drop the repeat).
REMINDER_MESSAGE_ID_DOMAIN = os.environ.get("REMINDER_MESSAGE_ID_DOMAIN", "carclinic.local")
REMINDER_LINK_BASE = os.environ.get("REMINDER_LINK_BASE", "")
# --- Clinical alerts (alerts/) ----------------------------------------------------------------------
# How long an alert may stay unacknowledged is protocol data; these are delivery mechanics only.
ALERT_WEBHOOK_URL = os.environ.get("ALERT_WEBHOOK_URL", REMINDER_WEBHOOK_URL)
ALERT_SCAN_INTERVAL_SECONDS = int(os.environ.get("ALERT_SCAN_INTERVAL_SECONDS", "60"))
ALERT_MAX_ATTEMPTS = int(os.environ.get("ALERT_MAX_ATTEMPTS", "8"))
ALERT_RETRY_BASE_SECONDS = int(os.environ.get("ALERT_RETRY_BASE_SECONDS", "30"))
ALERT_CLAIM_TIMEOUT_SECONDS = int(os.environ.get("ALERT_CLAIM_TIMEOUT_SECONDS", "120"))
ALERT_SEND_TIMEOUT_SECONDS = int(os.environ.get("ALERT_SEND_TIMEOUT_SECONDS", "10"))
# Material in quarantine or a wrong bag at the bedside holds up an infusion: unacknowledged this long, the custody
# or bedside alert goes to every physician (product data; the protocol's alerts carry their own minutes).
CUSTODY_ALERT_ESCALATE_AFTER_MINUTES = int(os.environ.get("CUSTODY_ALERT_ESCALATE_AFTER_MINUTES", "30"))
# --- A new weight (patients/) -------------------------------------------------------------------------
# A weight more than this % off the previous one within this many days asks "did it really change?" (issue 13:
# 154 typed for a 70 kg patient, pounds as kilograms). The clinic's product data: a measurement is the person's,
# below any protocol, so these are not in the protocol file.
WEIGHT_CHANGE_CONFIRM_PERCENT = os.environ.get("WEIGHT_CHANGE_CONFIRM_PERCENT", "10")
WEIGHT_CHANGE_WITHIN_DAYS = int(os.environ.get("WEIGHT_CHANGE_WITHIN_DAYS", "30"))
# --- The metrics page's stored snapshot (registry/) ------------------------------------------------
# The default range is recomputed in the background this often; the page recomputes any range whose snapshot
# is older than the maximum age (a missed beat run, or a range nobody asked for lately) before showing it.
METRICS_SNAPSHOT_INTERVAL_MINUTES = int(os.environ.get("METRICS_SNAPSHOT_INTERVAL_MINUTES", "15"))
METRICS_SNAPSHOT_MAX_AGE_MINUTES = int(os.environ.get("METRICS_SNAPSHOT_MAX_AGE_MINUTES", "30"))
CELERY_BEAT_SCHEDULE: dict = {
    "alerts-scan": {"task": "alerts.scan", "schedule": float(ALERT_SCAN_INTERVAL_SECONDS)},
    "scan-overdue": {"task": "notifications.scan_overdue", "schedule": float(REMINDER_SCAN_INTERVAL_SECONDS)},
    "send-due-reminders": {"task": "notifications.send_due_reminders", "schedule": float(REMINDER_SCAN_INTERVAL_SECONDS)},
    # Outcome contracts: every hour in full (milestones and overdue visits come with time), every minute
    # for the journeys that had an event (contracts.services.enrolments_refresh_changed).
    "contracts-refresh-all": {"task": "contracts.refresh_all", "schedule": 3600.0},
    "contracts-refresh-changed": {"task": "contracts.refresh_changed", "schedule": 60.0},
    "registry-metrics-snapshot": {
        "task": "registry.metrics_snapshot_refresh",
        "schedule": 60.0 * METRICS_SNAPSHOT_INTERVAL_MINUTES,
    },
}

# --- Logging: ids only, never names, MRNs or notes ----------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "carclinic@localhost")
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "20"))
