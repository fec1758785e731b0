# SPDX-License-Identifier: Apache-2.0
"""Django settings, all read from the environment (see ``potluck.env``).

Every default lives here in community: the enterprise app adds behaviour, never a
setting that the community edition needs.
"""

from __future__ import annotations

from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from potluck import editions, env

BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = env.data_dir()

SECRET_KEY = env.secret_key(DATA_DIR)
# Earlier keys, still accepted (sessions, signed values, secrets encrypted at rest).
SECRET_KEY_FALLBACKS = env.env_list("POTLUCK_SECRET_KEY_FALLBACKS", [])
DEBUG = env.env_bool("POTLUCK_DEBUG", False)
ALLOWED_HOSTS = env.env_list("POTLUCK_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.env_list("POTLUCK_CSRF_TRUSTED_ORIGINS", [])
PORT = env.env_int("POTLUCK_PORT", 8000)

# The enterprise app is installed only when its package and the libraries of the
# `enterprise` extra are present, so deleting enterprise/ (or installing without the
# extra) leaves a working community edition (CI proves it; see potluck.editions).
ENTERPRISE_AVAILABLE = (
    not env.env_bool("POTLUCK_COMMUNITY_ONLY", False) and editions.enterprise_installed()
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
    "potluck.web_security.SecureCookiesOverTLS",
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
# How often beat looks for lost nodes: half that time (at most every 10 s), so that a node
# is marked lost at most half its lost-after time late.
NODE_LOST_CHECK_SECONDS = min(10.0, max(1.0, NODE_LOST_AFTER_SECONDS / 2))
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
# Unset: the node's own address, where the gateway and the agent's health checks reach the
# replicas (a replica on loopback behind a routable address would never become READY).
SERVING_REPLICA_BIND_HOST = env.env_str("POTLUCK_REPLICA_BIND_HOST", NODE_ADDRESS)
SERVING_REPLICA_PORTS = env.env_str("POTLUCK_REPLICA_PORTS", "8100-8999")
SERVING_CPU_KVCACHE_GIB = env.env_int("POTLUCK_VLLM_CPU_KVCACHE_SPACE", 1)
# Who vLLM replicas and trainers run as when the node agent runs as root: "auto" (the
# system user potluck-engine, created if missing), a user name, or "off" to keep the agent's.
ENGINE_USER = env.env_str("POTLUCK_ENGINE_USER", "auto") or ""
# More of the agent's environment variables they may inherit (names, or patterns like
# "MY_TUNING_*"), beyond potluck.nodes.isolation's allowlist.
ENGINE_ENV_ALLOW = env.env_list("POTLUCK_ENGINE_ENV", [])

# Capacity quotas per organization (potluck.accounts.quotas); an organization's own
# values, set with `potluck orgs quota`, override these. 0 allows none.
ORG_MAX_REPLICAS = env.env_int("POTLUCK_ORG_MAX_REPLICAS", 16)
ORG_MAX_GPUS = env.env_int("POTLUCK_ORG_MAX_GPUS", 8)
ORG_MAX_CONCURRENT_FINE_TUNES = env.env_int("POTLUCK_ORG_MAX_FINE_TUNES", 4)
# How replicas share the node's CPUs with the request path (potluck.serving.cpu_share):
# a scheduling class (other, batch, idle), a nice value (0-19) and a CPU list ("" = all).
# idle: the gateway, Redis and PostgreSQL get a CPU the moment they wake up; the engine
# takes every cycle they leave (measured in bench/gateway, phase 5).
SERVING_REPLICA_CPU_CLASS = env.env_str("POTLUCK_REPLICA_CPU_CLASS", "idle")
SERVING_REPLICA_CPU_NICE = env.env_int("POTLUCK_REPLICA_CPU_NICE", 0)
SERVING_REPLICA_CPUS = env.env_str("POTLUCK_REPLICA_CPUS", "")

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
FINETUNE_RECONCILE_SECONDS = float(env.env_str("POTLUCK_FINETUNE_RECONCILE_SECONDS", "1"))

# Files (potluck.files): what one upload and one organization may hold, where bytes live.
FILE_MAX_BYTES = env.env_int("POTLUCK_FILE_MAX_BYTES", 512 * 2**20)
ORG_FILES_QUOTA_BYTES = env.env_int("POTLUCK_ORG_FILES_QUOTA_BYTES", 10 * 2**30)
# The longest JSONL line (one example or request); as the gateway's body limit.
FILE_MAX_LINE_BYTES = env.env_int("POTLUCK_FILE_MAX_LINE_BYTES", 4 * 2**20)
# Dotted path of the storage backend (potluck.files.storage.Storage); LocalStorage keeps the
# bytes under FILE_STORAGE_ROOT (unset: <data dir>/files).
FILE_STORAGE = env.env_str("POTLUCK_FILE_STORAGE", "potluck.files.storage.LocalStorage")
FILE_STORAGE_ROOT = env.env_str("POTLUCK_FILE_STORAGE_ROOT")
# S3Storage (potluck.files.storage_s3): checked when the storage is built, so a bad value
# fails the processes that use S3, not every process (see potluck.files.s3_conf).
S3_BUCKET = env.env_str("POTLUCK_S3_BUCKET")
S3_PREFIX = env.env_str("POTLUCK_S3_PREFIX", "")
S3_ENDPOINT_URL = env.env_str("POTLUCK_S3_ENDPOINT_URL")
S3_REGION = env.env_str("POTLUCK_S3_REGION")
S3_PART_BYTES = env.env_str("POTLUCK_S3_PART_BYTES")
S3_ADDRESSING_STYLE = env.env_str("POTLUCK_S3_ADDRESSING_STYLE", "auto")
# Examples one fine-tuning file may hold.
FINETUNE_FILE_MAX_LINES = env.env_int("POTLUCK_FINE_TUNE_FILE_MAX_LINES", 1_000_000)

# Batches (potluck.batches): requests one batch may hold (OpenAI's limit), lines in flight
# per running batch, runs in a row that may end in an unexpected error before the batch
# fails, and the runner's lease: silent this long, it is taken for dead; renewed this often.
BATCH_MAX_LINES = env.env_int("POTLUCK_BATCH_MAX_LINES", 50_000)
BATCH_CONCURRENCY = env.env_int("POTLUCK_BATCH_CONCURRENCY", 8)
BATCH_MAX_FAILED_RUNS = env.env_int("POTLUCK_BATCH_MAX_FAILED_RUNS", 5)
BATCH_LEASE_SECONDS = float(env.env_int("POTLUCK_BATCH_LEASE_SECONDS", 30))
BATCH_HEARTBEAT_SECONDS = float(env.env_str("POTLUCK_BATCH_HEARTBEAT_SECONDS", "2"))
# How trainers share the node's CPUs (as SERVING_REPLICA_CPU_*, potluck.serving.cpu_share).
# Never above the replicas': a trainer at a normal class would starve idle-class replicas.
FINETUNE_TRAINER_CPU_CLASS = env.env_str("POTLUCK_TRAINER_CPU_CLASS", "idle")
FINETUNE_TRAINER_CPU_NICE = env.env_int("POTLUCK_TRAINER_CPU_NICE", 0)
FINETUNE_TRAINER_CPUS = env.env_str("POTLUCK_TRAINER_CPUS", "")

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
# How often gateway workers reload the catalogue (models, replicas) and run the refreshers
# in the background; a request for a model the catalogue does not know reloads it at once.
GATEWAY_CATALOG_REFRESH_SECONDS = float(env.env_int("POTLUCK_GATEWAY_CATALOG_REFRESH_SECONDS", 1))
GATEWAY_CONNECT_TIMEOUT = 5.0
# Longest silence from a replica mid-answer before the request fails with 504.
GATEWAY_READ_TIMEOUT = float(env.env_int("POTLUCK_UPSTREAM_READ_TIMEOUT", 300))
# The bearer token a Prometheus scraper presents on /metrics (empty: /metrics is off).
METRICS_TOKEN = env.env_str("POTLUCK_METRICS_TOKEN", "") or ""

# One password sign-in path (POST /api/session, potluck.accounts.signin): OneSignInPath
# refuses password checks made anywhere else; ModelBackend checks them there and keeps
# sessions (SSO's included) and permissions working.
AUTHENTICATION_BACKENDS = [
    "potluck.accounts.signin.OneSignInPath",
    "django.contrib.auth.backends.ModelBackend",
]
# Sign-in throttling (see potluck.accounts.signin): failures allowed before delays start,
# per account and per client address; the delay doubles from the base up to the maximum.
SIGNIN_FREE_FAILURES_PER_ACCOUNT = env.env_int("POTLUCK_SIGNIN_FREE_FAILURES", 5)
SIGNIN_FREE_FAILURES_PER_ADDRESS = env.env_int("POTLUCK_SIGNIN_FREE_FAILURES_PER_ADDRESS", 20)
SIGNIN_BASE_DELAY_SECONDS = env.env_int("POTLUCK_SIGNIN_BASE_DELAY_SECONDS", 1)
SIGNIN_MAX_DELAY_SECONDS = env.env_int("POTLUCK_SIGNIN_MAX_DELAY_SECONDS", 900)
# Failed sign-ins are forgotten this long after the last one.
SIGNIN_FAILURE_WINDOW_SECONDS = env.env_int("POTLUCK_SIGNIN_FAILURE_WINDOW_SECONDS", 3600)
# A browser that signed in is throttled on its own for this long (a device cookie).
SIGNIN_DEVICE_COOKIE_DAYS = env.env_int("POTLUCK_SIGNIN_DEVICE_DAYS", 365)

# Invitations (potluck.accounts.invitations): how long a link works, where links point
# (empty: the origin of the request that sent the invitation), and how mail goes out, for
# invitations and alerts such as billing's budget warnings (no POTLUCK_SMTP_HOST: nothing
# is mailed; the operator hands out invitation links from the CLI).
INVITATION_DAYS = env.env_int("POTLUCK_INVITATION_DAYS", 7)
PUBLIC_URL = env.env_str("POTLUCK_PUBLIC_URL", "") or ""
EMAIL_BACKEND = env.env_str("POTLUCK_EMAIL_BACKEND",
                            "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.env_str("POTLUCK_SMTP_HOST", "") or ""
EMAIL_PORT = env.env_int("POTLUCK_SMTP_PORT", 587)
EMAIL_HOST_USER = env.env_str("POTLUCK_SMTP_USER", "") or ""
EMAIL_HOST_PASSWORD = env.env_str("POTLUCK_SMTP_PASSWORD", "") or ""
EMAIL_USE_TLS = env.env_bool("POTLUCK_SMTP_STARTTLS", True)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env.env_str("POTLUCK_EMAIL_FROM", "potluck@localhost")
# Where django.core.mail.backends.filebased.EmailBackend (POTLUCK_EMAIL_BACKEND) writes.
EMAIL_FILE_PATH = env.env_str("POTLUCK_EMAIL_FILE_PATH", str(DATA_DIR / "mail"))
# Metered billing (the enterprise edition's "billing" feature; defaults live here so that
# the community edition never depends on enterprise settings). Money is in one currency
# per installation (ISO 4217); budget periods and report days follow BILLING_TIME_ZONE.
BILLING_CURRENCY = (env.env_str("POTLUCK_BILLING_CURRENCY", "USD") or "USD").upper()
BILLING_TIME_ZONE = env.env_str("POTLUCK_BILLING_TIME_ZONE", "UTC") or "UTC"
# Stripe: a secret key (sk_...), the webhook endpoint's signing secret (whsec_...), the
# meter's event name, and optionally a metered price that linked customers subscribe to.
BILLING_STRIPE_API_KEY = env.env_str("POTLUCK_BILLING_STRIPE_API_KEY", "") or ""
BILLING_STRIPE_WEBHOOK_SECRET = env.env_str("POTLUCK_BILLING_STRIPE_WEBHOOK_SECRET", "") or ""
BILLING_STRIPE_METER_EVENT = env.env_str("POTLUCK_BILLING_STRIPE_METER_EVENT",
                                         "potluck_usage") or "potluck_usage"
BILLING_STRIPE_PRICE_ID = env.env_str("POTLUCK_BILLING_STRIPE_PRICE_ID", "") or ""
# Where the Stripe SDK sends calls (empty: Stripe's own hosts; tests point these at a fake).
BILLING_STRIPE_API_BASE = env.env_str("POTLUCK_BILLING_STRIPE_API_BASE", "") or ""
BILLING_STRIPE_METER_EVENTS_BASE = env.env_str("POTLUCK_BILLING_STRIPE_METER_EVENTS_BASE",
                                               "") or ""
BILLING_STRIPE_TIMEOUT_SECONDS = env.env_int("POTLUCK_BILLING_STRIPE_TIMEOUT_SECONDS", 20)
# Meter event calls per second, over all senders (Stripe test mode allows 25).
BILLING_STRIPE_CALLS_PER_SECOND = env.env_int("POTLUCK_BILLING_STRIPE_CALLS_PER_SECOND", 20)
# A failed send is retried after this, doubling per failure in a row, up to the maximum.
BILLING_STRIPE_RETRY_SECONDS = env.env_int("POTLUCK_BILLING_STRIPE_RETRY_SECONDS", 5)
BILLING_STRIPE_RETRY_MAX_SECONDS = env.env_int("POTLUCK_BILLING_STRIPE_RETRY_MAX_SECONDS", 600)
# A failed invoice payment: warn for this many days, then (if set) refuse inference until
# an invoice is paid.
BILLING_PAYMENT_GRACE_DAYS = env.env_int("POTLUCK_BILLING_PAYMENT_GRACE_DAYS", 7)
BILLING_BLOCK_AFTER_GRACE = env.env_bool("POTLUCK_BILLING_BLOCK_AFTER_GRACE", True)
# Contribution credits (the enterprise edition's "credits" feature). The share of each paid
# invoice and licence sale that goes to the community pool (a fraction, as text); the
# distribution period (month or week) and an optional cap per person and period (minor
# units of BILLING_CURRENCY, 0: none); where the forges and their OAuth apps are.
CREDITS_REVENUE_SHARE = env.env_str("POTLUCK_CREDITS_REVENUE_SHARE", "0.10") or "0.10"
CREDITS_DISTRIBUTION_PERIOD = env.env_str("POTLUCK_CREDITS_DISTRIBUTION_PERIOD",
                                          "month") or "month"
CREDITS_PAYOUT_CAP = env.env_int("POTLUCK_CREDITS_PAYOUT_CAP", 0)
CREDITS_GITHUB_API_URL = env.env_str("POTLUCK_CREDITS_GITHUB_API_URL",
                                     "https://api.github.com") or "https://api.github.com"
CREDITS_GITHUB_OAUTH_URL = env.env_str("POTLUCK_CREDITS_GITHUB_OAUTH_URL",
                                       "https://github.com") or "https://github.com"
CREDITS_GITHUB_CLIENT_ID = env.env_str("POTLUCK_CREDITS_GITHUB_CLIENT_ID", "") or ""
CREDITS_GITHUB_CLIENT_SECRET = env.env_str("POTLUCK_CREDITS_GITHUB_CLIENT_SECRET", "") or ""
CREDITS_GITLAB_URL = env.env_str("POTLUCK_CREDITS_GITLAB_URL",
                                 "https://gitlab.com") or "https://gitlab.com"
CREDITS_GITLAB_CLIENT_ID = env.env_str("POTLUCK_CREDITS_GITLAB_CLIENT_ID", "") or ""
CREDITS_GITLAB_CLIENT_SECRET = env.env_str("POTLUCK_CREDITS_GITLAB_CLIENT_SECRET", "") or ""
CREDITS_RECONCILE_DAYS = env.env_int("POTLUCK_CREDITS_RECONCILE_DAYS", 3)
CREDITS_LINK_TOKEN_MINUTES = env.env_int("POTLUCK_CREDITS_LINK_TOKEN_MINUTES", 60)
CREDITS_FORGE_TIMEOUT_SECONDS = env.env_int("POTLUCK_CREDITS_FORGE_TIMEOUT_SECONDS", 10)

# Enterprise licences bought online. Every installation: where the vendor's licence store
# is (the console's buy/upgrade link, and online renewal when it can be reached), and
# whether to fetch renewed licences from it. The vendor's own installation only: the
# store (potluck_enterprise.store) runs where the issuer's private key is configured, as
# a path to a PEM file (e.g. a mounted secret); the key itself never enters settings,
# the database or a log. Its Stripe account, webhook signing secret and public address.
LICENSE_STORE_URL = env.env_str("POTLUCK_LICENSE_STORE_URL", "") or ""
LICENSE_ONLINE_RENEWAL = env.env_bool("POTLUCK_LICENSE_ONLINE_RENEWAL", True)
STORE_ISSUER_KEY_FILE = env.env_str("POTLUCK_STORE_ISSUER_KEY_FILE", "") or ""
STORE_STRIPE_API_KEY = env.env_str("POTLUCK_STORE_STRIPE_API_KEY", "") or ""
STORE_STRIPE_WEBHOOK_SECRET = env.env_str("POTLUCK_STORE_STRIPE_WEBHOOK_SECRET", "") or ""
# Where the store's Stripe SDK sends calls (empty: Stripe's own hosts; tests: a fake).
STORE_STRIPE_API_BASE = env.env_str("POTLUCK_STORE_STRIPE_API_BASE", "") or ""
STORE_PUBLIC_URL = env.env_str("POTLUCK_STORE_PUBLIC_URL", "") or ""
# How long an emailed sign-in link works, and how many one address may ask for per hour.
STORE_SIGN_IN_LINK_MINUTES = env.env_int("POTLUCK_STORE_SIGN_IN_LINK_MINUTES", 15)
STORE_SIGN_IN_LINKS_PER_HOUR = env.env_int("POTLUCK_STORE_SIGN_IN_LINKS_PER_HOUR", 5)

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
    # JSON with a nesting limit (potluck.jsonbody): a deep body is a 400, not a crash.
    "DEFAULT_PARSER_CLASSES": [
        "potluck.json_parser.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "potluck.accounts.api_base.exception_handler",
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

# TLS. Behind a TLS-terminating proxy (POTLUCK_BEHIND_TLS_PROXY=true): trust its
# X-Forwarded-Proto (the proxy must set it and drop the client's), redirect plain http
# to https (except the health probes), and always send cookies as Secure. Without it,
# cookies are still Secure on any request that arrived over HTTPS (see
# potluck.web_security), and plain http on 127.0.0.1 (`make run`) keeps working.
BEHIND_TLS_PROXY = env.env_bool("POTLUCK_BEHIND_TLS_PROXY", False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.env_bool("POTLUCK_SSL_REDIRECT", BEHIND_TLS_PROXY)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.env_bool("POTLUCK_SECURE_COOKIES",
                                                          BEHIND_TLS_PROXY)
# Strict-Transport-Security, sent only on HTTPS answers (Django's SecurityMiddleware).
SECURE_HSTS_SECONDS = env.env_int("POTLUCK_HSTS_SECONDS", 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.env_bool("POTLUCK_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.env_str("POTLUCK_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

CELERY_BEAT_SCHEDULE = {
    "replace-lost-nodes": {"task": "potluck.serving.replace_lost_nodes",
                           "schedule": NODE_LOST_CHECK_SECONDS},
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
