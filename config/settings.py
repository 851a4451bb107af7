"""The one settings module: everything comes from the environment (and `.env`).

Nothing set gives the embedded default: a SQLite file, the in-process cache,
Celery tasks run in-process after commit, events written to the log, email to
the console, HS256 tokens. `DJANGO_ENV=production` turns on the strict checks.
The variables and their defaults are the contract in `API.md` → Configuration.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from config.env import (
    env,
    env_bool,
    env_choice,
    env_int,
    env_list,
    field_encryption_keys,
    read_file_setting,
    secret_key,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DJANGO_ENV = env_choice("DJANGO_ENV", "development", ("development", "production"))
PRODUCTION = DJANGO_ENV == "production"

DEBUG = env_bool("DEBUG", False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must not be on with DJANGO_ENV=production")


SECRET_KEY = secret_key(production=PRODUCTION, base_dir=BASE_DIR)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1")

INSTALLED_APPS = [
    "config.admin_site.ServiceAdminConfig",
    # Before accounts: accounts.social.admin replaces its identity admin (edits go through the service).
    "social_django",
    # Before django.contrib.auth, so that its `createsuperuser` (through the service) is the one run.
    "accounts",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "corsheaders",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's assets, served from here: /api/docs/ works offline
    "profiles",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Outermost but one: it sees every answer, the 503s and JSON 404s included.
    "core.middleware.ApiResponseHeadersMiddleware",
    "core.request_context.RequestMetaMiddleware",
    "core.middleware.StaticFilesMiddleware",
    "core.middleware.CorsMiddleware",
    # The admin's middleware; the JSON API goes around it (core/middleware.py).
    "core.middleware.BrowserSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "core.middleware.BrowserAuthenticationMiddleware",
    "core.middleware.BrowserMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.exceptions.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
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

# --- Database -----------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# A new PostgreSQL connection per request costs ~4 ms here: keep them, and
# check them before reuse so a restarted server does not fail a request.
DATABASES["default"]["CONN_MAX_AGE"] = env_int("CONN_MAX_AGE", 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default serves several threads (runserver, the periodic
    # thread) from one file. WAL lets readers run beside the one writer;
    # IMMEDIATE takes the write lock when a transaction starts, so a reader
    # never has to upgrade to a writer (that upgrade fails at once with
    # "database is locked", whatever the timeout); the busy timeout makes a
    # writer wait its turn instead of failing. Write transactions stay short
    # (no password hashing or mail inside them), so a few seconds is plenty.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL",
            "transaction_mode": "IMMEDIATE",
            "timeout": 10,
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# A database that is still unreachable after that (locked, restarting, gone)
# is a 503 with this Retry-After (core/exceptions.py), never a 500.
DATABASE_UNAVAILABLE_RETRY_AFTER = 5

# --- Request bodies -------------------------------------------------------------
# JSON and form bodies (not files: UPLOAD_MAX_BYTES) larger than this are a 413
# before they are parsed. The largest legitimate body is a document's text
# (DOCUMENT_MAX_TEXT_CHARS, 200,000 characters: at most ~1.2 MB even with every
# character \u-escaped), so 2 MiB leaves room without letting a client make
# the service hold many megabytes per request.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000

# --- Cache --------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
CACHE_TTL = env_int("CACHE_TTL", 3600, minimum=1)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "TIMEOUT": CACHE_TTL,
            "KEY_PREFIX": "us",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                # JSON, not pickle: nothing in the cache can execute code.
                "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
                # Short timeouts: a dead Redis slows a request by at most this.
                "SOCKET_CONNECT_TIMEOUT": 0.5,
                "SOCKET_TIMEOUT": 0.5,
                # Errors are not swallowed here: the code that reads the cache
                # decides what a failure means (a miss, never "all clear").
                "IGNORE_EXCEPTIONS": False,
            },
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "user-service",
            "TIMEOUT": CACHE_TTL,
        }
    }
# The near cache (core/near_cache.py): each process keeps the auth keys it read from Redis, and
# Redis' CLIENT TRACKING tells it when they change, so a warm request makes no round trip. It is
# used only while Redis answered a ping sent less than NEAR_CACHE_MAX_SILENCE seconds ago, which
# must stay below the socket timeout above (a revocation whose cache write timed out is answered
# after that timeout, when the near caches are already out of use). At most NEAR_CACHE_MAX_ENTRIES
# entries a process (~1 KB each: ~4 MB).
NEAR_CACHE = bool(REDIS_URL)
NEAR_CACHE_PREFIX = "auth:"
NEAR_CACHE_MAX_ENTRIES = 4096
NEAR_CACHE_MAX_SILENCE = 0.25

# --- Auth ---------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "accounts.backends.LockoutModelBackend",
    "accounts.backends.AdminRoleBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    # Plain bcrypt: the hashes the earlier services stored; upgraded on login.
    "accounts.hashers.BCryptPasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("username", "email", "full_name")},
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

ACCESS_TOKEN_EXPIRE_MINUTES = env_int("ACCESS_TOKEN_EXPIRE_MINUTES", 30, minimum=1)
REFRESH_TOKEN_EXPIRE_DAYS = env_int("REFRESH_TOKEN_EXPIRE_DAYS", 7, minimum=1)
SESSION_MAX_AGE_DAYS = env_int("SESSION_MAX_AGE_DAYS", 30, minimum=1)
MAX_ACTIVE_SESSIONS = env_int("MAX_ACTIVE_SESSIONS", 10, minimum=1)
# last_used_at is written at most this often per session by plain requests
# (refresh always writes it): the session list stays useful, reads stay cheap.
SESSION_TOUCH_SECONDS = env_int("SESSION_TOUCH_SECONDS", 300)
# An account without a usable password (made by social login) proves itself for a sensitive
# change (a link, email change, delete) with a session opened less than this many seconds ago.
REAUTH_MAX_AGE = env_int("REAUTH_MAX_AGE", 300, minimum=1)
LOGIN_MAX_ATTEMPTS = env_int("LOGIN_MAX_ATTEMPTS", 15, minimum=1)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 300, minimum=1)
# --- Multi-factor authentication (accounts/services/mfa*.py) ---
# Holders of these roles act as that role (its API endpoints, the Django admin) only from a session
# that passed a second factor. Empty: nobody is required to (users may still turn TOTP on).
MFA_REQUIRED_ROLES = env_list("MFA_REQUIRED_ROLES", "admin")
# How long the `mfa_token` of a login that passed its password waits for the code.
MFA_TOKEN_SECONDS = env_int("MFA_TOKEN_SECONDS", 300, minimum=30)


FIELD_ENCRYPTION_KEYS = field_encryption_keys(production=PRODUCTION, secret_key=SECRET_KEY)
ACCOUNT_RESTORE_DAYS = env_int("ACCOUNT_RESTORE_DAYS", 30, minimum=1)
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 180, minimum=1)
OUTBOX_RETENTION_DAYS = env_int("OUTBOX_RETENTION_DAYS", 7, minimum=1)
PASSWORD_RESET_URL = env.str("PASSWORD_RESET_URL", default="/reset-password?uid={uid}&token={token}")
# `mandatory`: an account whose address is unverified cannot log in (403 email_unverified).
EMAIL_VERIFICATION = env_choice("EMAIL_VERIFICATION", "optional", ("optional", "mandatory"))
EMAIL_VERIFY_URL = env.str("EMAIL_VERIFY_URL", default="/verify-email?uid={uid}&token={token}")
THROTTLE_LOGIN_IP = env.str("THROTTLE_LOGIN_IP", default="100/min")
THROTTLE_REGISTER_IP = env.str("THROTTLE_REGISTER_IP", default="20/min")
THROTTLE_PASSWORD_RESET_IP = env.str("THROTTLE_PASSWORD_RESET_IP", default="5/min")
# Resumes and requirements one user may create (DRF rate syntax), checked before the body is read.
THROTTLE_UPLOAD_USER = env.str("THROTTLE_UPLOAD_USER", default="60/hour")
# Verification mails one user may ask for again (`POST /auth/email/verify/resend`).
THROTTLE_EMAIL_VERIFY_USER = env.str("THROTTLE_EMAIL_VERIFY_USER", default="5/hour")
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

ADMIN_USERNAME = env.str("ADMIN_USERNAME", default="admin")
ADMIN_EMAIL = env.str("ADMIN_EMAIL", default="admin@localhost")
ADMIN_PASSWORD = env.str("ADMIN_PASSWORD", default="")

JWT_PRIVATE_KEY = read_file_setting("JWT_PRIVATE_KEY_FILE")
JWT_PREVIOUS_PUBLIC_KEY = read_file_setting("JWT_PREVIOUS_PUBLIC_KEY_FILE")


def _issuer() -> str:
    """`JWT_ISSUER`: the service's public base URL, the tokens' `iss` and the discovery `issuer`.

    Required in production: a default would give every deployment the same issuer, and the
    services that check `iss` could not tell this one from a test instance. An OIDC issuer is a
    URL with no query or fragment (OpenID Connect Discovery 1.0, section 3); `http` is allowed for
    the compose set on plain HTTP and for development.
    """
    issuer = env.str("JWT_ISSUER", default="")
    if not issuer:
        if PRODUCTION:
            raise ImproperlyConfigured(
                "JWT_ISSUER is required with DJANGO_ENV=production: "
                "the service's public base URL, e.g. https://users.example.com"
            )
        return "http://127.0.0.1:8000"
    parts = urlsplit(issuer)
    if parts.scheme not in {"http", "https"} or not parts.netloc or parts.query or parts.fragment:
        raise ImproperlyConfigured(
            f"JWT_ISSUER must be an http(s) URL without a query or fragment, got {issuer!r}"
        )
    return issuer


JWT_ISSUER = _issuer()
# The `aud` of access tokens: one name for every service of the platform that accepts them.
JWT_AUDIENCE = env.str("JWT_AUDIENCE", default="platform").strip()
if not JWT_AUDIENCE:
    raise ImproperlyConfigured("JWT_AUDIENCE must not be empty")

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=ACCESS_TOKEN_EXPIRE_MINUTES),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=REFRESH_TOKEN_EXPIRE_DAYS),
    "ALGORITHM": "RS256" if JWT_PRIVATE_KEY else "HS256",
    "SIGNING_KEY": JWT_PRIVATE_KEY or SECRET_KEY,
    "VERIFYING_KEY": "",  # derived from the private key in accounts.tokens
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "sub",
    "UPDATE_LAST_LOGIN": False,
}

# --- Hot path (accounts.cache, accounts.tokens, accounts.hot_path_views) -----------------
# How long a cached *live* session state is trusted: the bound within which a
# revocation whose cache write was lost (a Redis hiccup) still reaches every worker.
SESSION_STATE_TTL = env_int("SESSION_STATE_TTL", 30, minimum=1)

# --- REST framework -----------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.SessionJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.PageSizeCursorPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.exceptions.exception_handler",
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "PAGE_SIZE": 20,
    "DEFAULT_THROTTLE_RATES": {
        "login_ip": THROTTLE_LOGIN_IP,
        "register_ip": THROTTLE_REGISTER_IP,
        "password_reset_ip": THROTTLE_PASSWORD_RESET_IP,
        "upload_user": THROTTLE_UPLOAD_USER,
        "email_verify_user": THROTTLE_EMAIL_VERIFY_USER,
    },
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "User service",
    "DESCRIPTION": (
        "Accounts, tokens, sessions, roles, notifications and per-user data.\n\n"
        "The Kafka messages the service sends and receives: the AsyncAPI 3.0 document at "
        "[/api/asyncapi.json](/api/asyncapi.json). For the services that verify its tokens: "
        "OpenID Connect discovery at "
        "[/.well-known/openid-configuration](/.well-known/openid-configuration)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No validator badge: Swagger UI would fetch it from validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.strip_optional_slash",
        "config.schema.document_errors",
        "config.schema.link_created_resources",
    ],
}

CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
# The public documents answer every origin themselves (core/public_documents.py); django-cors-headers
# would answer their preflights for CORS_ALLOWED_ORIGINS only.
CORS_URLS_REGEX = r"^/(?!\.well-known/|api/asyncapi\.json$)"

# --- Events -------------------------------------------------------------------
KAFKA_BOOTSTRAP_SERVERS = env_list("KAFKA_BOOTSTRAP_SERVERS")
KAFKA_TOPIC_DATA = env.str("KAFKA_TOPIC_DATA", default="uploading_data")
KAFKA_TOPIC_AI_REQUESTS = env.str("KAFKA_TOPIC_AI_REQUESTS", default="AI_handler")
KAFKA_TOPIC_AI_RESULTS = env.str("KAFKA_TOPIC_AI_RESULTS", default="AI_handler_results")
KAFKA_CONSUMER_GROUP = env.str("KAFKA_CONSUMER_GROUP", default="user-service")
# Where consume_events copies a message it cannot handle (reason in a header), before committing it.
KAFKA_TOPIC_AI_RESULTS_DLQ = env.str("KAFKA_TOPIC_AI_RESULTS_DLQ", default="AI_handler_results.dlq")
# The largest `result` a processing_result may carry, serialized; the whole message may be this
# plus room for its envelope, and a bigger one is refused unread.
PROCESSING_RESULT_MAX_BYTES = env_int("PROCESSING_RESULT_MAX_BYTES", 262144, minimum=1)
# How long the relay waits on an unreachable broker before leaving the rows for the next run.
KAFKA_MAX_BLOCK_MS = env_int("KAFKA_MAX_BLOCK_MS", 5000)
KAFKA_REQUEST_TIMEOUT_MS = env_int("KAFKA_REQUEST_TIMEOUT_MS", 10000)
# The CloudEvents `source` of every message (a URI-reference: the producer's identity, not a host).
EVENTS_SOURCE = env.str("EVENTS_SOURCE", default="/user-service").strip()
if not EVENTS_SOURCE:
    raise ImproperlyConfigured("EVENTS_SOURCE must not be empty")

# --- Profile data -------------------------------------------------------------
# Chat sessions kept per user: creating one more removes the least recently active.
MAX_USER_SESSIONS = env_int("MAX_USER_SESSIONS", 10, minimum=1)
# JSON or YAML of the LLM providers and models users may choose; unset: the built-in
# catalogue (profiles/llm_catalog.yaml). Validated when the app starts (profiles.apps).
LLM_CATALOG_FILE = env.str("LLM_CATALOG_FILE", default="")

# --- Email --------------------------------------------------------------------
_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
for _key in (
    "EMAIL_HOST",
    "EMAIL_PORT",
    "EMAIL_HOST_USER",
    "EMAIL_HOST_PASSWORD",
    "EMAIL_USE_TLS",
    "EMAIL_USE_SSL",
):
    if _key in _email:
        globals()[_key] = _email[_key]
if _email["EMAIL_BACKEND"].endswith("filebased.EmailBackend"):
    # filemail:///var/mail/x -> django-environ drops the leading "/": read the path from the URL as written.
    EMAIL_FILE_PATH = "/" + env.str("EMAIL_URL").split("://", 1)[1].lstrip("/")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="no-reply@localhost")

# --- Documents ----------------------------------------------------------------
# Resumes, requirements and their processings (profiles app).
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 5 * 1024 * 1024, minimum=1)
DOCUMENT_MAX_TEXT_CHARS = env_int("DOCUMENT_MAX_TEXT_CHARS", 200_000, minimum=1)
STORAGE_TIME_RESUME = env_int("STORAGE_TIME_RESUME", 3600, minimum=1)
STORAGE_TIME_REQUIREMENTS = env_int("STORAGE_TIME_REQUIREMENTS", 259200, minimum=1)
PROCESSING_RATE_LIMIT = env_int("PROCESSING_RATE_LIMIT", 5, minimum=1)
PROCESSING_BLOCK_SECONDS = env_int("PROCESSING_BLOCK_SECONDS", 30, minimum=1)
# A .docx is a zip: what its central directory may declare before anything is inflated.
DOCX_MAX_UNCOMPRESSED_BYTES = env_int("DOCX_MAX_UNCOMPRESSED_BYTES", 50 * 1024 * 1024, minimum=1)
DOCX_MAX_ENTRIES = env_int("DOCX_MAX_ENTRIES", 1000, minimum=1)
# Text extraction runs in a child process with these bounds (profiles.extraction): CPU seconds,
# and memory beyond what the child starts with. Past either the upload is a 415 parse_limit.
DOCUMENT_PARSE_SECONDS = env_int("DOCUMENT_PARSE_SECONDS", 10, minimum=1)
DOCUMENT_PARSE_MEMORY_MB = env_int("DOCUMENT_PARSE_MEMORY_MB", 256, minimum=16)
# Extractions one web process runs at once; more uploads wait briefly, then get a 503.
DOCUMENT_PARSE_CONCURRENCY = env_int("DOCUMENT_PARSE_CONCURRENCY", 2, minimum=1)
# Where uploaded files are kept: any Django storage class (django-storages for an object
# store); the file system under DOCUMENT_STORAGE_DIR by default. Never served by URL.
DOCUMENT_STORAGE_BACKEND = env.str(
    "DOCUMENT_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage"
)
DOCUMENT_STORAGE_DIR = env.str("DOCUMENT_STORAGE_DIR", default=str(BASE_DIR / "media" / "documents"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "documents": {
        "BACKEND": DOCUMENT_STORAGE_BACKEND,
        "OPTIONS": (
            {"location": DOCUMENT_STORAGE_DIR, "base_url": None, "file_permissions_mode": 0o600}
            if DOCUMENT_STORAGE_BACKEND.endswith("FileSystemStorage")
            else {}
        ),
    },
}

# --- Celery -------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
# No broker: tasks run in-process (queued with transaction.on_commit, so after commit).
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 100
CELERY_TASK_ACKS_LATE = True
# A task whose worker dies mid-run is run again elsewhere, not lost: a dead pool process requeues it at
# once; a whole worker killed leaves it unacknowledged in Redis, handed out again after the visibility
# timeout (longer than any task's countdown or retry backoff, 300 s at most here).
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=1),
    # kombu scans for such tasks every interval x throttle seconds (100 s by default): every 10 s here.
    "unacked_restore_interval": 10,
    "unacked_restore_throttle": 1,
}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Periodic work; in the embedded default (no broker) a server thread runs it instead of beat.
CELERY_BEAT_SCHEDULE = {
    "purge-deleted-accounts": {"task": "accounts.tasks.purge_deleted_accounts", "schedule": 3600.0},
    "purge-old-records": {"task": "accounts.tasks.purge_old_records", "schedule": 3600.0 * 6},
    # The sweep: events whose after-commit relay failed (broker down) go out here.
    "publish-outbox": {"task": "notifications.tasks.publish_outbox", "schedule": 10.0},
    "purge-outbox": {"task": "notifications.tasks.purge_outbox", "schedule": 3600.0 * 6},
}

# --- Social login ---------------------------------------------------------------
# social-auth-app-django does the provider work; accounts.social adds what it
# lacks (see accounts/social/__init__.py). Only these two backends exist, and
# they are not Django authentication backends: no Django login session.
SOCIAL_AUTH_AUTHENTICATION_BACKENDS = [
    "accounts.social.backends.YandexBackend",
    "accounts.social.backends.TelegramBackend",
]
SOCIAL_AUTH_STRATEGY = "accounts.social.strategy.SocialStrategy"
SOCIAL_AUTH_YANDEX_OAUTH2_KEY = env.str("SOCIAL_AUTH_YANDEX_OAUTH2_KEY", default="")
SOCIAL_AUTH_YANDEX_OAUTH2_SECRET = env.str("SOCIAL_AUTH_YANDEX_OAUTH2_SECRET", default="")
TELEGRAM_BOT_TOKEN = env.str("TELEGRAM_BOT_TOKEN", default="")
TELEGRAM_AUTH_MAX_AGE = env_int("TELEGRAM_AUTH_MAX_AGE", 300, minimum=1)
SOCIAL_AUTH_FRONTEND_URL = env.str("SOCIAL_AUTH_FRONTEND_URL", default="/")
# Seconds each call to a provider may take to connect and to answer (social-core's default is 5 for both).
SOCIAL_AUTH_CONNECT_TIMEOUT = 3.05
SOCIAL_AUTH_READ_TIMEOUT = 5.0
SOCIAL_AUTH_PIPELINE = (
    "social_core.pipeline.social_auth.social_details",
    "social_core.pipeline.social_auth.social_uid",
    "social_core.pipeline.social_auth.auth_allowed",
    "social_core.pipeline.social_auth.social_user",
    # Never `associate_by_email`: an email from a provider proves nothing here.
    "accounts.social.pipeline.create_user",
    "accounts.social.pipeline.one_per_provider",
    "social_core.pipeline.social_auth.associate_user",
    "social_core.pipeline.social_auth.load_extra_data",
    "accounts.social.pipeline.remember_outcome",
)
SOCIAL_AUTH_JSONFIELD_ENABLED = True
SOCIAL_AUTH_URL_NAMESPACE = "social"
SOCIAL_AUTH_LOGIN_ERROR_URL = SOCIAL_AUTH_FRONTEND_URL
SOCIAL_AUTH_LOGIN_REDIRECT_URL = SOCIAL_AUTH_FRONTEND_URL
CELERY_BEAT_SCHEDULE["purge-social-state"] = {"task": "accounts.tasks.purge_social_state", "schedule": 3600.0}

# --- i18n, static -------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Serve the admin's static files from the apps' folders: no collectstatic step.
WHITENOISE_USE_FINDERS = True

# --- Logging ------------------------------------------------------------------
# Plain or JSON lines (LOG_FORMAT) to stdout and to LOG_DIR/user_service.log,
# rotated at midnight; every line carries the request id (core/logging_setup.py).
LOG_DIR = Path(env.str("LOG_DIR", default=str(BASE_DIR / "logs")))
LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), upper=True)
LOG_FORMAT = env_choice("LOG_FORMAT", "plain", ("plain", "json"))
from core.logging_setup import build_logging  # noqa: E402  (the settings' own helper)

LOGGING = build_logging(log_dir=LOG_DIR, level=LOG_LEVEL, log_format=LOG_FORMAT)
# The worker logs through LOGGING too (same format, same request ids), not Celery's own handler.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Metrics and health ---------------------------------------------------------
# /metrics: these addresses, or `Authorization: Bearer METRICS_TOKEN`.
METRICS_ALLOWED_CIDRS = env_list("METRICS_ALLOWED_CIDRS", "127.0.0.0/8,::1")
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
READY_MAX_EVENT_LAG_SECONDS = env_int("READY_MAX_EVENT_LAG_SECONDS", 300, minimum=1)
# Each readiness check gets this long; a hung dependency answers "timeout", the probe does not hang.
READY_CHECK_TIMEOUT_MS = env_int("READY_CHECK_TIMEOUT_MS", 2000, minimum=10)
import ipaddress  # noqa: E402

from core import metrics_process  # noqa: E402

# Before any metric exists: one file per process (host and pid) when PROMETHEUS_MULTIPROC_DIR is set.
metrics_process.configure()
for _cidr in METRICS_ALLOWED_CIDRS:
    try:
        ipaddress.ip_network(_cidr, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_CIDRS: {_cidr!r} is not an address or network") from None
# Request counts and latencies per view (django-prometheus), first in and last out; the inner one
# with its label children bound once per process (core/middleware.py).
MIDDLEWARE.insert(0, "django_prometheus.middleware.PrometheusBeforeMiddleware")
MIDDLEWARE.append("core.middleware.PrometheusAfterMiddleware")
# Query timings: django-prometheus' wrapper of the same backend. Cache timings: core/metrics_cache.py.
_METRICS_DB_ENGINES = {
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
}
for _database in DATABASES.values():
    _database["ENGINE"] = _METRICS_DB_ENGINES.get(_database["ENGINE"], _database["ENGINE"])
_METRICS_CACHE_BACKENDS = {
    "django_redis.cache.RedisCache": "core.metrics_cache.RedisCache",
    "django.core.cache.backends.locmem.LocMemCache": "core.metrics_cache.LocMemCache",
}
for _cache in CACHES.values():
    _cache["BACKEND"] = _METRICS_CACHE_BACKENDS.get(_cache["BACKEND"], _cache["BACKEND"])

# --- Production hardening -----------------------------------------------------
if TRUSTED_PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
