"""Settings of the demo shop, read from the environment.

With ``DEBUG=1`` everything has a working default (SQLite, local memory, eager Celery, a
built-in key), which is how ``make demo`` runs it. Without it the settings are production
ones: ``SECRET_KEY`` is required, HTTPS is enforced and WhiteNoise serves the collected static
files. README, *Running the demo in production mode*, lists every variable.
"""

import importlib.util
import os
from pathlib import Path

import django
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"  # git-ignored: database, media, collected static, GeoIP file


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_number(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number of seconds, not {value!r}.") from None


DEBUG = env_bool("DEBUG", False)
# Django loads this module as its settings; other settings modules may import it for its
# values (the test suite borrows the templates and middleware).
_RUNNING = os.environ.get("DJANGO_SETTINGS_MODULE") == __name__

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY and DEBUG:
    SECRET_KEY = "django-insecure-demo-shop-key-for-debug-only"
elif not SECRET_KEY and _RUNNING:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set: outside DEBUG the demo shop takes its secret key from the "
        "environment (make one with: python -c 'import secrets; print(secrets.token_urlsafe())'). "
        "Set DEBUG=1 to run it locally with a built-in key instead."
    )
# Imported without a key and without DEBUG, SECRET_KEY stays empty: Django refuses to run so.

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# WhiteNoise serves the collected static files; without DEBUG nothing else would.
WHITENOISE = importlib.util.find_spec("whitenoise") is not None
if not WHITENOISE and not DEBUG and _RUNNING:
    raise ImproperlyConfigured(
        "Outside DEBUG the demo shop serves its static files with WhiteNoise: "
        'pip install -e ".[demo]".'
    )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    # Celery beat schedules the jobs where the optional extra is installed.
    *(["django_celery_beat"] if importlib.util.find_spec("django_celery_beat") else []),
    "personalization",
    "shop_demo.catalog",
    "shop_demo.cart",
    "shop_demo.orders",
    "shop_demo.accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    *(["whitenoise.middleware.WhiteNoiseMiddleware"] if WHITENOISE else []),
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # DEBUG only: lets a visitor pretend to come from another country (see footer).
    "shop_demo.middleware.PretendIPMiddleware",
    "personalization.middleware.VisitorMiddleware",
]

ROOT_URLCONF = "shop_demo.urls"
WSGI_APPLICATION = "shop_demo.wsgi.application"
ASGI_APPLICATION = "shop_demo.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "shop_demo" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "shop_demo.catalog.context_processors.navigation",
                "shop_demo.cart.context_processors.cart",
                "shop_demo.context_processors.demo",
            ],
        },
    },
]

# SQLite as a web server wants it: readers never wait for the writer (WAL), a commit does not
# wait for the disk (a power cut may lose the last commits, never the file), and a transaction
# that will write takes the lock when it starts, instead of failing when it upgrades.
SQLITE_OPTIONS = {
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    "transaction_mode": "IMMEDIATE",
}

# Databases: SQLite under var/ unless DATABASE_URL names another (postgres://..., sqlite:///...).
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    import dj_database_url

    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
    }
else:
    VAR_DIR.mkdir(exist_ok=True)  # SQLite cannot create the folder itself
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "demo.sqlite3",
            "OPTIONS": SQLITE_OPTIONS,
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Caches: process-local unless REDIS_URL is set. A Redis that stops answering costs a request
# at most these timeouts (profiles fall back to the database), never a hung worker.
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {  # redis-py's connection pool
                "socket_connect_timeout": env_number("REDIS_SOCKET_CONNECT_TIMEOUT", 0.25),
                "socket_timeout": env_number("REDIS_SOCKET_TIMEOUT", 0.5),
                "retry_on_timeout": False,
            },
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "shop-demo",
        }
    }

# Celery: tasks run in-process unless a broker is configured.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
if CELERY_BROKER_URL:
    CELERY_TASK_ALWAYS_EAGER = False
    CELERY_BROKER_CONNECTION_TIMEOUT = env_number("CELERY_BROKER_CONNECTION_TIMEOUT", 2.0)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_connect_timeout": CELERY_BROKER_CONNECTION_TIMEOUT,
        "socket_timeout": env_number("CELERY_BROKER_SOCKET_TIMEOUT", 5.0),
    }
    CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
else:
    CELERY_BROKER_URL = "memory://"
    CELERY_TASK_ALWAYS_EAGER = True
    CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = "Europe/Berlin"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en"
TIME_ZONE = "Europe/Berlin"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT") or VAR_DIR / "static")  # collectstatic
STATICFILES_DIRS = [BASE_DIR / "shop_demo" / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = VAR_DIR / "media"
if not DEBUG and WHITENOISE:
    # Hashed, compressed copies, served with far-future cache headers.
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

# HTTPS: on by default outside DEBUG. Behind a proxy that terminates TLS, set
# SECURE_PROXY_SSL_HEADER=1 so that its X-Forwarded-Proto tells Django the request was secure.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = int(env_number("SECURE_HSTS_SECONDS", 0 if DEBUG else 3600))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
}

PERSONALIZATION = {
    "PRODUCT_MODEL": "catalog.Product",
    "PRODUCT_ADAPTER": "shop_demo.catalog.adapters.DemoProductAdapter",
    "PRODUCT_VIEW_URLS": {"catalog:product-detail": "slug"},
    # An empty GEOIP_PATH turns geolocation off.
    "GEOIP_PATH": os.environ.get("GEOIP_PATH", str(VAR_DIR / "demo-geoip.mmdb")) or None,
    "TRUSTED_PROXY_COUNT": int(os.environ.get("TRUSTED_PROXY_COUNT") or 0),
    "CONTROL_GROUP_PERCENT": 10,
    # Links in emails lead here; the emails go to the console (EMAIL_BACKEND) and the admin's
    # outbox (Personalization › Emails) unless the environment names an SMTP server.
    "EMAIL_SITE_URL": os.environ.get("SITE_URL", "http://127.0.0.1:8000"),
    "EMAIL_CART_PATH": "/cart/",
    # So that someone trying the demo sees the emails their own browsing produces: the
    # browse and cart emails are due 5 minutes after the last view (a visit ends after 30
    # minutes without a request; -25 counts back from there), at any hour. A shop keeps the
    # defaults: an hour after the visit ended, never at night.
    "EMAIL_FLOWS": {
        "welcome": 0,
        "browse_abandonment": -25,
        "cart_abandonment": -25,
        "post_purchase": 3 * 24 * 60,
        "winback": 45 * 24 * 60,
    },
    "EMAIL_QUIET_HOURS": None,
}

# DEMO_PAGE_CACHE=1: pages cached whole by Django's per-site cache, personal parts filled by
# the page script (docs/caching.md). The header then reads nothing of the session, and the
# footer's "pretend to come from" form is off, so that the home and category pages can be
# shared by every visitor.
DEMO_PAGE_CACHE = env_bool("DEMO_PAGE_CACHE", False)
if DEMO_PAGE_CACHE:
    MIDDLEWARE = [
        "django.middleware.cache.UpdateCacheMiddleware",
        *MIDDLEWARE,
        "django.middleware.cache.FetchFromCacheMiddleware",
    ]
    CACHE_MIDDLEWARE_SECONDS = 300
    PERSONALIZATION["PAGE_CACHE"] = True

# Email: printed on the console by default; EMAIL_HOST (and EMAIL_PORT, EMAIL_HOST_USER,
# EMAIL_HOST_PASSWORD, EMAIL_USE_TLS) from the environment sends through that SMTP server.
# Django 6.1 names the backend in MAILERS, earlier versions in EMAIL_BACKEND and EMAIL_*.
if os.environ.get("EMAIL_HOST"):
    _MAILER = {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": os.environ["EMAIL_HOST"],
            "port": int(os.environ.get("EMAIL_PORT") or 25),
            "username": os.environ.get("EMAIL_HOST_USER", ""),
            "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
            "use_tls": os.environ.get("EMAIL_USE_TLS", "") == "1",
            "timeout": 10,
        },
    }
else:
    _MAILER = {"BACKEND": "django.core.mail.backends.console.EmailBackend", "OPTIONS": {}}
if django.VERSION >= (6, 1):
    MAILERS = {"default": _MAILER}
else:
    EMAIL_BACKEND = _MAILER["BACKEND"]
    _OPTIONS = _MAILER["OPTIONS"]
    if _OPTIONS:
        EMAIL_HOST, EMAIL_PORT = _OPTIONS["host"], _OPTIONS["port"]
        EMAIL_HOST_USER, EMAIL_HOST_PASSWORD = _OPTIONS["username"], _OPTIONS["password"]
        EMAIL_USE_TLS, EMAIL_TIMEOUT = _OPTIONS["use_tls"], _OPTIONS["timeout"]
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "shop@example.com")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "personalization": {"level": os.environ.get("PERSONALIZATION_LOG_LEVEL", "INFO")},
        "shop_demo": {"level": "INFO"},
    },
}
