# SPDX-License-Identifier: Apache-2.0
"""Django settings, all read from the environment (see ``potluck.env``).

Every default lives here in community: the enterprise app adds behaviour, never a
setting that the community edition needs.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from potluck import env

BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = env.data_dir()

SECRET_KEY = env.secret_key(DATA_DIR)
# Earlier keys, still accepted (sessions, signed values, secrets encrypted at rest).
SECRET_KEY_FALLBACKS = env.env_list("POTLUCK_SECRET_KEY_FALLBACKS", [])
DEBUG = env.env_bool("POTLUCK_DEBUG", False)
ALLOWED_HOSTS = env.env_list("POTLUCK_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.env_list("POTLUCK_CSRF_TRUSTED_ORIGINS", [])
PORT = env.env_int("POTLUCK_PORT", 8000)

# The enterprise app is installed only when its package is present, so deleting
# enterprise/ leaves a working community edition (CI proves it).
ENTERPRISE_AVAILABLE = (
    not env.env_bool("POTLUCK_COMMUNITY_ONLY", False)
    and importlib.util.find_spec("potluck_enterprise") is not None
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "potluck.accounts",
    "potluck.registry",
    "potluck.nodes",
    "potluck.serving",
    "potluck.usage",
    "potluck.files",
    "potluck.finetune",
    "potluck.batches",
]
if ENTERPRISE_AVAILABLE:
    INSTALLED_APPS.append("potluck_enterprise")
# Plug-ins: Django apps (dotted module paths) that register into potluck.extensions from
# their AppConfig.ready(), e.g. a site's own request policy or usage consumer.
PLUGINS = env.env_list("POTLUCK_PLUGINS", [])
INSTALLED_APPS += [app for app in PLUGINS if app not in INSTALLED_APPS]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # A database outage is a 503 in the API's own shape (see the module).
    "potluck.database_outage.DatabaseOutageMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "potluck.urls"
ASGI_APPLICATION = "potluck.asgi.application"
AUTH_USER_MODEL = "accounts.User"

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
            ],
        },
    }
]


def _database_from_url(url: str | None) -> dict[str, object]:
    if not url:
        # Nothing configured and no `potluck up` running: the CLI refuses before it
        # gets here (see potluck.cli.context); a bare import still needs a shape.
        return {"ENGINE": "django.db.backends.postgresql", "NAME": "potluck",
                "HOST": str(DATA_DIR / "run" / "no-database-configured")}
    params = conninfo_to_dict(url)
    # A database host that does not answer must fail a connection in seconds, not after
    # the kernel's TCP time-out: the gateway then serves known keys from its cache.
    # (``?connect_timeout=N`` in DATABASE_URL overrides it.)
    params.setdefault("connect_timeout", "5")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": params.pop("dbname", "potluck"),
        "USER": params.pop("user", ""),
        "PASSWORD": params.pop("password", ""),
        "HOST": params.pop("host", ""),
        "PORT": params.pop("port", ""),
        "CONN_MAX_AGE": env.env_int("POTLUCK_DB_CONN_MAX_AGE", 60),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": params,
    }


DATABASE_URL = env.database_url(DATA_DIR)
DATABASES = {"default": _database_from_url(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.redis_url(DATA_DIR) or f"unix://{DATA_DIR / 'run' / 'no-redis-configured.sock'}"
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "potluck",
    }
}

CELERY_BROKER_URL = env.celery_broker_url(REDIS_URL)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis restarted or unreachable: workers (the node agents) reconnect for as long as it
# takes, instead of exiting after Celery's default of 100 tries.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_TASK_DEFAULT_QUEUE = "potluck.control"
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "run" / "celerybeat-schedule")

NODE_HEARTBEAT_SECONDS = env.env_int("POTLUCK_NODE_HEARTBEAT_SECONDS", 5)
# A node whose heartbeat is older than this is marked lost.
NODE_LOST_AFTER_SECONDS = env.env_int("POTLUCK_NODE_LOST_AFTER_SECONDS", 20)
# A usage-stream consumer silent this long on an entry is taken for dead; others take over.
USAGE_RECLAIM_IDLE_SECONDS = env.env_int("POTLUCK_USAGE_RECLAIM_IDLE_SECONDS", 60)
# A usage consumer that raised is retried from its cursor after this, doubling per failure
# in a row, up to the maximum (see potluck.usage.consumers).
USAGE_CONSUMER_RETRY_SECONDS = env.env_int("POTLUCK_USAGE_CONSUMER_RETRY_SECONDS", 2)
USAGE_CONSUMER_RETRY_MAX_SECONDS = env.env_int("POTLUCK_USAGE_CONSUMER_RETRY_MAX_SECONDS", 300)
NODE_NAME = env.env_str("POTLUCK_NODE_NAME")
NODE_ADDRESS = env.env_str("POTLUCK_NODE_ADDRESS", "127.0.0.1")

# The serving pool: how node agents run, watch and stop vLLM replicas.
SERVING_RECONCILE_SECONDS = env.env_int("POTLUCK_SERVING_RECONCILE_SECONDS", 2)
SERVING_READY_TIMEOUT_SECONDS = env.env_int("POTLUCK_SERVING_READY_TIMEOUT_SECONDS", 300)
SERVING_DRAIN_SECONDS = env.env_int("POTLUCK_SERVING_DRAIN_SECONDS", 60)
SERVING_STOP_GRACE_SECONDS = env.env_int("POTLUCK_SERVING_STOP_GRACE_SECONDS", 20)
SERVING_RESTART_BACKOFF_SECONDS = env.env_int("POTLUCK_SERVING_RESTART_BACKOFF_SECONDS", 5)
SERVING_RESTART_BACKOFF_MAX_SECONDS = env.env_int("POTLUCK_SERVING_RESTART_BACKOFF_MAX_SECONDS",
                                                  300)
SERVING_REPLICA_BIND_HOST = env.env_str("POTLUCK_REPLICA_BIND_HOST", "127.0.0.1")
SERVING_REPLICA_PORTS = env.env_str("POTLUCK_REPLICA_PORTS", "8100-8999")
SERVING_CPU_KVCACHE_GIB = env.env_int("POTLUCK_VLLM_CPU_KVCACHE_SPACE", 1)

# Nameservers for SSO domain verification (empty: the system resolver).
SSO_DNS_NAMESERVERS = env.env_list("POTLUCK_SSO_DNS_NAMESERVERS", [])

# Fine-tuning
# Trainer processes a node runs at once (each uses the node's CPU or one GPU).
FINETUNE_SLOTS_PER_NODE = env.env_int("POTLUCK_FINETUNE_SLOTS_PER_NODE", 1)
# Base learning rates ("auto" multiplies them by 1); 0: chosen by the model's size.
FINETUNE_LORA_LEARNING_RATE = float(env.env_str("POTLUCK_FINETUNE_LORA_LR", "0"))
FINETUNE_FULL_LEARNING_RATE = float(env.env_str("POTLUCK_FINETUNE_FULL_LR", "0"))
FINETUNE_MAX_SEQ_LEN = env.env_int("POTLUCK_FINETUNE_MAX_SEQ_LEN", 1024)
FINETUNE_CHECKPOINT_EVERY_STEPS = env.env_int("POTLUCK_FINETUNE_CHECKPOINT_EVERY", 50)
# The "full" method copies every weight: only for small models.
FINETUNE_FULL_MAX_BYTES = env.env_int("POTLUCK_FINETUNE_FULL_MAX_BYTES", 3 * 2**30)
# Times a job is restarted from its last checkpoint after its trainer or node died.
FINETUNE_MAX_ATTEMPTS = env.env_int("POTLUCK_FINETUNE_MAX_ATTEMPTS", 3)
FINETUNE_CANCEL_GRACE_SECONDS = env.env_int("POTLUCK_FINETUNE_CANCEL_GRACE_SECONDS", 60)
# A paused trainer first finishes its step and writes a checkpoint; past this it is killed
# and the job pauses at its last checkpoint before that.
FINETUNE_PAUSE_GRACE_SECONDS = env.env_int("POTLUCK_FINETUNE_PAUSE_GRACE_SECONDS", 300)
FINETUNE_SUPERVISE_SECONDS = float(env.env_str("POTLUCK_FINETUNE_SUPERVISE_SECONDS", "1"))

# Local model directories that the API may register; the CLI (the operator) may
# register any directory it can read.
MODEL_ROOTS = [
    Path(p).resolve() for p in env.env_list("POTLUCK_MODEL_ROOTS", [str(DATA_DIR / "models")])
]

# The /v1 gateway (see potluck.gateway). Limits of 0 mean unlimited; per-org and per-key
# values stored in the database override these defaults.
GATEWAY_DEFAULT_KEY_RPM = env.env_int("POTLUCK_DEFAULT_KEY_RPM", 0)
GATEWAY_DEFAULT_KEY_TPM = env.env_int("POTLUCK_DEFAULT_KEY_TPM", 0)
GATEWAY_DEFAULT_ORG_RPM = env.env_int("POTLUCK_DEFAULT_ORG_RPM", 0)
GATEWAY_DEFAULT_ORG_TPM = env.env_int("POTLUCK_DEFAULT_ORG_TPM", 0)
GATEWAY_MAX_BODY_BYTES = env.env_int("POTLUCK_MAX_BODY_BYTES", 4 * 2**20)
GATEWAY_KEY_CACHE_SECONDS = float(env.env_int("POTLUCK_KEY_CACHE_SECONDS", 5))
GATEWAY_CATALOG_REFRESH_SECONDS = 1.0
GATEWAY_CONNECT_TIMEOUT = 5.0
# Longest silence from a replica mid-answer before the request fails with 504.
GATEWAY_READ_TIMEOUT = float(env.env_int("POTLUCK_UPSTREAM_READ_TIMEOUT", 300))
# The bearer token a Prometheus scraper presents on /metrics (empty: /metrics is off).
METRICS_TOKEN = env.env_str("POTLUCK_METRICS_TOKEN", "") or ""

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "potluck.accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        "potluck.accounts.authentication.ExtensionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "potluck.api.base.exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Potluck management API",
    "DESCRIPTION": "Organizations, members, API keys and the model registry.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every start otherwise
WHITENOISE_USE_FINDERS = True
# The console (frontend/, built by `make run` into frontend/dist): its assets are served under
# /static/console/ and its index.html by potluck.console for "/" and the client-side routes.
CONSOLE_DIST_DIR = Path(env.env_str("POTLUCK_CONSOLE_DIR")
                        or BASE_DIR.parent.parent / "frontend" / "dist").resolve()
STATICFILES_DIRS = [("console", CONSOLE_DIST_DIR)] if CONSOLE_DIST_DIR.is_dir() else []
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SAMESITE = "Lax"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.env_str("POTLUCK_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

CELERY_BEAT_SCHEDULE = {
    "mark-lost-nodes": {"task": "potluck.nodes.mark_lost_nodes", "schedule": 10.0},
    # Expires: a backlog of roll-ups queued while no worker ran is one roll-up's work.
    "usage-roll-up": {"task": "potluck.usage.roll_up", "schedule": 2.0,
                      "options": {"expires": 10}},
    # Each consumer's cursor is locked while it is fed: overlapping runs pass it by.
    "usage-feed-consumers": {"task": "potluck.usage.feed_consumers", "schedule": 2.0,
                             "options": {"expires": 10}},
    # Stale runs are dropped: the next one, 3 s later, does the same work.
    "serving-schedule": {"task": "potluck.serving.schedule", "schedule": 3.0,
                         "options": {"expires": 10}},
    "files-delete-expired": {"task": "potluck.files.delete_expired", "schedule": 60.0,
                             "options": {"expires": 120}},
    "batches-resume-stalled": {"task": "potluck.batches.resume_stalled", "schedule": 15.0,
                               "options": {"expires": 30, "queue": "potluck.jobs"}},
    "batches-expire": {"task": "potluck.batches.expire", "schedule": 60.0,
                       "options": {"expires": 120, "queue": "potluck.jobs"}},
    "finetune-schedule": {"task": "potluck.finetune.schedule", "schedule": 3.0,
                          "options": {"expires": 10, "queue": "potluck.jobs"}},
}
