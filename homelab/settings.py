"""Settings for the homelab orchestrator.

Everything a person may change comes from environment variables read by the small typed
helpers below, which fail loudly on a value they do not understand. The defaults give the
embedded setup: SQLite in the data directory, django-q2's database broker, no Redis.

Documented variables (see README "Configuration"):
  HOMELAB_DATA_DIR       data directory (default ~/.local/share/homelab-orchestrator)
  HOMELAB_DATABASE_URL   postgres://user:pass@host:port/name to use PostgreSQL
  HOMELAB_REDIS_URL      redis://host:port/0 for the task broker and channel layer
  HOMELAB_DEBUG          true/false (default false)
  HOMELAB_ALLOWED_HOSTS  comma separated, added to the machine's own names and addresses
  HOMELAB_POLL_INTERVAL_SECONDS  device polling interval (default 30)
  HOMELAB_TRUSTED_PROXIES        comma separated proxy addresses allowed to set X-Forwarded-For
  HOMELAB_HTTPS          true when served behind an HTTPS proxy (secure cookies, HSTS)
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

from homelab import hosts, keys

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    value = os.environ.get(name)
    file_name = os.environ.get(f"{name}_FILE")
    if value is None and file_name:
        value = Path(file_name).read_text().strip()
    return default if value is None or value == "" else value


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}.")


def env_int(name: str, default: int, *, minimum: int = 1) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}.")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DATA_DIR = Path(
    env_str("HOMELAB_DATA_DIR", str(Path.home() / ".local" / "share" / "homelab-orchestrator"))
).expanduser()
DATABASE_URL = env_str("HOMELAB_DATABASE_URL", "")
REDIS_URL = env_str("HOMELAB_REDIS_URL", "")
SQLITE_PATH = DATA_DIR / "homelab.sqlite3"

try:
    SECRET_KEY, FIELD_ENCRYPTION_KEY = keys.load_or_create(
        DATA_DIR, database_exists=SQLITE_PATH.exists() and not DATABASE_URL
    )
except keys.KeyError_ as exc:
    raise ImproperlyConfigured(str(exc)) from None

DEBUG = env_bool("HOMELAB_DEBUG", False)
# The machine's own names and addresses plus localhost; HOMELAB_ALLOWED_HOSTS adds more (a
# DNS-rebinding page arrives with a foreign Host and is refused).
ALLOWED_HOSTS = list(dict.fromkeys(hosts.own_hosts() + env_list("HOMELAB_ALLOWED_HOSTS", [])))
HTTPS = env_bool("HOMELAB_HTTPS", False)
TRUSTED_PROXIES = env_list("HOMELAB_TRUSTED_PROXIES", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "ninja",  # its own Swagger UI files for /api/v1/docs (else it loads them from a CDN)
    "channels",
    "django_q",
    "encrypted_model_fields",
    "axes",
    "homelab",
    "homelab.core",
    "devices",
    "scheduling",
    "marketplace",
    "pooling",
    "backups",
    "proxy",
    "fleet",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "homelab.middleware.TrustedProxyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "homelab.middleware.LoginRequired",
    "homelab.middleware.FirstRunMiddleware",
    "homelab.roles_middleware.RolesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "homelab.middleware.NoStoreMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "homelab.urls"
ASGI_APPLICATION = "homelab.asgi.application"
WSGI_APPLICATION = None

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
                "homelab.context_processors.product",
            ],
        },
    },
]


def _database_from_url(url: str) -> dict:
    parsed = urlparse(url)
    if parsed.scheme not in ("postgres", "postgresql"):
        raise ImproperlyConfigured(
            f"HOMELAB_DATABASE_URL must start with postgres://, not {parsed.scheme}://."
        )
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parsed.path.lstrip("/"),
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "",
        "PORT": str(parsed.port or ""),
        # Django's docs: under ASGI persistent connections must be off (each request runs in
        # its own thread, and kept connections pile up until PostgreSQL refuses more).
        "CONN_MAX_AGE": 0,
        # ?sslmode=require and other libpq options in the URL.
        "OPTIONS": dict(parse_qsl(parsed.query)),
    }


if DATABASE_URL:
    DATABASES = {"default": _database_from_url(DATABASE_URL)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": SQLITE_PATH,
            "OPTIONS": {
                # WAL lets the web process read while the worker writes; the busy timeout
                # makes a writer wait for the lock instead of failing at once.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# Security: cookies and headers. HOMELAB_HTTPS=true when behind an HTTPS reverse proxy.
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads it to send X-CSRFToken
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and env_bool("HOMELAB_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = env_list("HOMELAB_CSRF_TRUSTED_ORIGINS", [])

# Content-Security-Policy (django-csp): scripts only from our own static files, never inline
# (an injected <script> or onclick= does not run); inline styles are allowed.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# Login rate limiting (django-axes): per account and per address, separately.
AXES_FAILURE_LIMIT = env_int("HOMELAB_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]

# Background work (django-q2). The ORM broker needs nothing else installed.
POLL_INTERVAL_SECONDS = env_int("HOMELAB_POLL_INTERVAL_SECONDS", 30)
# A device that misses this many polls in a row is shown offline.
OFFLINE_AFTER_MISSED_POLLS = 2
METRIC_RETENTION_DAYS = env_int("HOMELAB_METRIC_RETENTION_DAYS", 8)
SSH_CONNECT_TIMEOUT_SECONDS = env_int("HOMELAB_SSH_CONNECT_TIMEOUT_SECONDS", 8)
SSH_COMMAND_TIMEOUT_SECONDS = env_int("HOMELAB_SSH_COMMAND_TIMEOUT_SECONDS", 30)
DISCOVERY_MAX_HOSTS = env_int("HOMELAB_DISCOVERY_MAX_HOSTS", 1024)
DISCOVERY_CONCURRENCY = env_int("HOMELAB_DISCOVERY_CONCURRENCY", 64)
DISCOVERY_TIMEOUT_SECONDS = float(env_str("HOMELAB_DISCOVERY_TIMEOUT_SECONDS", "1.0"))
DISCOVERY_SCANS_PER_MINUTE = env_int("HOMELAB_DISCOVERY_SCANS_PER_MINUTE", 5)

# Placement: weights of each criterion (any non-negative numbers with a positive sum) and
# the default policy ("spread" balances devices, "pack" fills the fewest). The admin's
# "Placement settings" overrides both.
PLACEMENT_WEIGHTS = {"ram": 40, "storage": 30, "cpu": 15, "load": 10, "uptime": 5}
PLACEMENT_POLICY = env_str("HOMELAB_PLACEMENT_POLICY", "spread")

# Apps: where each app's folder lives on a device. Extra recipe folders come from the
# HOMELAB_RECIPE_DIRS environment variable, read when the catalog loads (marketplace.recipes).
HOMELAB_DEPLOY_ROOT = env_str("HOMELAB_DEPLOY_ROOT", "/opt/homelab/apps")

Q_CLUSTER: dict = {
    "name": "homelab",
    "workers": env_int("HOMELAB_WORKERS", 2),
    "timeout": 300,
    # longer than the longest job's own timeout (a deploy or a removal with dumps: 3600 s,
    # homelab.core.jobs.JobRunner.timeout_seconds), so a running job is never re-delivered
    "retry": 3700,
    "max_attempts": 1,
    "catch_up": False,
    "ack_failures": True,
    "save_limit": 500,
    # How often the worker looks for new tasks (the ORM brokers; Redis blocks instead): a
    # deployment waits half this long on average before it starts. On SQLite each look is
    # a stat of the database files (homelab.taskbroker), not a query: 0.1 s costs nothing.
    "poll": 0.1,
    # The cluster's own check of its processes (timeouts, restarts, its status, the
    # schedule every 30 s); django-q2's default 0.5 s woke it 120 times a minute.
    "guard_cycle": 2,
    "label": "Background tasks",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    Q_CLUSTER["orm"] = "default"
    if not DATABASE_URL:
        Q_CLUSTER["broker_class"] = "homelab.taskbroker.SQLiteORM"
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "paramiko": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}

NINJA_PAGINATION_PER_PAGE = 100
