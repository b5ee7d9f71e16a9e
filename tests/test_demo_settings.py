"""The demo shop's settings, read from the environment: each case imports them in a process of
its own, as ``manage.py``, a WSGI server or Celery would."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from personalization.testutils import DEMO_GEOIP_RECORDS, write_geoip_database

ROOT = Path(__file__).resolve().parent.parent
# Everything the settings read, dropped from the environment the processes inherit.
VARIABLES = {
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "DATABASE_URL",
    "REDIS_URL",
    "REDIS_SOCKET_CONNECT_TIMEOUT",
    "REDIS_SOCKET_TIMEOUT",
    "CELERY_BROKER_URL",
    "CELERY_BROKER_CONNECTION_TIMEOUT",
    "CELERY_BROKER_SOCKET_TIMEOUT",
    "GEOIP_PATH",
    "STATIC_ROOT",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_PROXY_SSL_HEADER",
    "SESSION_COOKIE_SECURE",
    "TRUSTED_PROXY_COUNT",
}
KEY = "a-secret-key-for-these-tests-only-0123456789-abcdefghijklmnopqrstuvwxyz"

SHOW_SETTINGS = """
import json
from django.conf import settings as s
print(json.dumps({
    "DEBUG": s.DEBUG,
    "SECRET_KEY": s.SECRET_KEY,
    "ALLOWED_HOSTS": s.ALLOWED_HOSTS,
    "DATABASE": {k: s.DATABASES["default"][k] for k in ("ENGINE", "NAME", "HOST", "PORT")},
    "CACHE": s.CACHES["default"],
    "CELERY_BROKER_URL": s.CELERY_BROKER_URL,
    "CELERY_BROKER_CONNECTION_TIMEOUT": getattr(s, "CELERY_BROKER_CONNECTION_TIMEOUT", None),
    "CELERY_BROKER_TRANSPORT_OPTIONS": getattr(s, "CELERY_BROKER_TRANSPORT_OPTIONS", None),
    "GEOIP_PATH": s.PERSONALIZATION["GEOIP_PATH"],
    "SECURE_SSL_REDIRECT": s.SECURE_SSL_REDIRECT,
    "SECURE_HSTS_SECONDS": s.SECURE_HSTS_SECONDS,
    "SECURE_PROXY_SSL_HEADER": s.SECURE_PROXY_SSL_HEADER,
    "SESSION_COOKIE_SECURE": s.SESSION_COOKIE_SECURE,
    "CSRF_COOKIE_SECURE": s.CSRF_COOKIE_SECURE,
    "STATICFILES_BACKEND": s.STORAGES["staticfiles"]["BACKEND"],
    "MIDDLEWARE": s.MIDDLEWARE,
}, default=str))
"""

# The production settings need the demo extra (a session that installs only the test extra
# skips them).
pytestmark = pytest.mark.skipif(
    not all(importlib.util.find_spec(name) for name in ("whitenoise", "dj_database_url")),
    reason="needs the demo extra (whitenoise, dj-database-url)",
)


def demo_process(args, tmp_path, **env):
    environment = {key: value for key, value in os.environ.items() if key not in VARIABLES}
    environment.update(DJANGO_SETTINGS_MODULE="shop_demo.settings", PYTHONPATH=str(ROOT))
    # SQLite in the test's folder, so that no run touches the demo's var/.
    environment["DATABASE_URL"] = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    environment.update(env)
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def demo_settings(tmp_path, **env):
    result = demo_process(["-c", SHOW_SETTINGS], tmp_path, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --- DEBUG and the secret key ----------------------------------------------------------------


def test_without_debug_the_secret_key_is_required(tmp_path):
    result = demo_process(["manage.py", "check"], tmp_path)
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is not set" in result.stderr
    assert "DEBUG=1" in result.stderr  # says how to run it locally


def test_borrowed_by_other_settings_without_a_key_the_key_stays_empty(tmp_path):
    # As the test suite does: no error at import, and no built-in key to fall back on.
    code = "import shop_demo.settings as s; print(repr(s.SECRET_KEY), s.DEBUG)"
    result = demo_process(["-c", code], tmp_path, DJANGO_SETTINGS_MODULE="tests.settings")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["''", "False"]


def test_debug_runs_on_a_built_in_key_without_https(tmp_path):
    values = demo_settings(tmp_path, DEBUG="1")
    assert values["DEBUG"] is True
    assert values["SECRET_KEY"].startswith("django-insecure-")
    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["SECURE_HSTS_SECONDS"] == 0
    assert values["SESSION_COOKIE_SECURE"] is False
    assert values["CACHE"]["BACKEND"].endswith("LocMemCache")
    assert values["CELERY_BROKER_URL"] == "memory://"


def test_production_settings_from_the_environment(tmp_path):
    values = demo_settings(
        tmp_path,
        SECRET_KEY=KEY,
        ALLOWED_HOSTS="shop.example, www.shop.example",
        DATABASE_URL="postgres://shop:pw@db.internal:5433/shop",
        REDIS_URL="redis://cache.internal:6379/2",
        CELERY_BROKER_URL="redis://cache.internal:6379/3",
        GEOIP_PATH="/var/lib/GeoIP/GeoLite2-City.mmdb",
        SECURE_PROXY_SSL_HEADER="1",
    )
    assert values["DEBUG"] is False
    assert values["SECRET_KEY"] == KEY
    assert values["ALLOWED_HOSTS"] == ["shop.example", "www.shop.example"]
    assert values["DATABASE"] == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "shop",
        "HOST": "db.internal",
        "PORT": 5433,
    }
    assert values["CACHE"] == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://cache.internal:6379/2",
        "OPTIONS": {
            "socket_connect_timeout": 0.25,
            "socket_timeout": 0.5,
            "retry_on_timeout": False,
        },
    }
    assert values["CELERY_BROKER_URL"] == "redis://cache.internal:6379/3"
    assert values["CELERY_BROKER_CONNECTION_TIMEOUT"] == 2.0
    assert values["CELERY_BROKER_TRANSPORT_OPTIONS"] == {
        "socket_connect_timeout": 2.0,
        "socket_timeout": 5.0,
    }
    assert values["GEOIP_PATH"] == "/var/lib/GeoIP/GeoLite2-City.mmdb"
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_HSTS_SECONDS"] == 3600
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["SESSION_COOKIE_SECURE"] is values["CSRF_COOKIE_SECURE"] is True


def test_timeouts_and_https_settings_can_be_changed(tmp_path):
    values = demo_settings(
        tmp_path,
        SECRET_KEY=KEY,
        REDIS_URL="redis://cache.internal:6379/2",
        REDIS_SOCKET_CONNECT_TIMEOUT="1.5",
        REDIS_SOCKET_TIMEOUT="2",
        SECURE_SSL_REDIRECT="0",
        SECURE_HSTS_SECONDS="63072000",
        SESSION_COOKIE_SECURE="off",
        GEOIP_PATH="",
    )
    assert values["CACHE"]["OPTIONS"]["socket_connect_timeout"] == 1.5
    assert values["CACHE"]["OPTIONS"]["socket_timeout"] == 2.0
    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["SECURE_HSTS_SECONDS"] == 63072000
    assert values["SESSION_COOKIE_SECURE"] is False
    assert values["GEOIP_PATH"] is None  # empty: no geolocation


def test_a_timeout_that_is_not_a_number_is_a_clear_error(tmp_path):
    result = demo_process(
        ["-c", SHOW_SETTINGS],
        tmp_path,
        SECRET_KEY=KEY,
        REDIS_URL="redis://cache.internal:6379/2",
        REDIS_SOCKET_TIMEOUT="soon",
    )
    assert result.returncode != 0
    assert "REDIS_SOCKET_TIMEOUT must be a number of seconds, not 'soon'" in result.stderr


# --- What the values do ----------------------------------------------------------------------


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never answers, like a wedged Redis."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:  # closed
                return

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for connection in accepted:
        connection.close()


def test_a_redis_that_does_not_answer_costs_the_socket_timeout(tmp_path, silent_server):
    code = """
import time
import django
django.setup()
from django.core.cache import cache
started = time.monotonic()
try:
    cache.get("profile")
except Exception as exc:
    print(type(exc).__name__, round(time.monotonic() - started, 2))
"""
    result = demo_process(
        ["-c", code],
        tmp_path,
        SECRET_KEY=KEY,
        REDIS_URL=f"redis://127.0.0.1:{silent_server}/0",
        REDIS_SOCKET_TIMEOUT="0.3",
    )
    assert result.returncode == 0, result.stderr
    # Without a socket timeout redis-py would wait for ever (the process times out instead).
    error, seconds = result.stdout.split()
    assert error == "TimeoutError"
    assert 0.3 <= float(seconds) < 3


def test_geoip_path_from_the_environment_is_used(tmp_path):
    path = write_geoip_database(tmp_path / "city.mmdb", DEMO_GEOIP_RECORDS)
    code = """
import django
django.setup()
from personalization.profiling.geo import lookup
print(lookup("81.2.69.142").city)
"""
    result = demo_process(["-c", code], tmp_path, SECRET_KEY=KEY, GEOIP_PATH=str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "London"


# --- Static files with DEBUG off -------------------------------------------------------------

SERVE = """
import json, sys
from io import BytesIO
from shop_demo.wsgi import application

def get(path, scheme="https"):
    environ = {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "localhost",
        "SERVER_PORT": "443" if scheme == "https" else "80", "HTTP_HOST": "localhost",
        "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": scheme, "wsgi.input": BytesIO(),
        "wsgi.errors": sys.stderr, "wsgi.version": (1, 0), "wsgi.multithread": False,
        "wsgi.multiprocess": True, "wsgi.run_once": False, "REMOTE_ADDR": "127.0.0.1",
    }
    answer = {}
    def start_response(status, headers, exc_info=None):
        answer.update(status=int(status.split()[0]), headers=dict(headers))
    body = b"".join(application(environ, start_response))
    return {**answer, "body": body.decode("utf-8", "replace")}

print(json.dumps([get(path, scheme) for scheme, path in json.loads(sys.argv[1])]))
"""


def test_collected_static_files_are_served_with_debug_off(tmp_path):
    static_root = tmp_path / "static"
    env = {"SECRET_KEY": KEY, "STATIC_ROOT": str(static_root)}
    collected = demo_process(["manage.py", "collectstatic", "--noinput"], tmp_path, **env)
    assert collected.returncode == 0, collected.stderr
    manifest = json.loads((static_root / "staticfiles.json").read_text())["paths"]
    hashed = manifest["shop_demo/shop.css"]
    assert hashed != "shop_demo/shop.css"
    assert (static_root / f"{hashed}.gz").exists()  # compressed copies too

    requests = [
        ("https", "/static/shop_demo/shop.css"),
        ("https", f"/static/{hashed}"),
        ("https", f"/static/{manifest['personalization/personalization.js']}"),
        ("http", "/static/shop_demo/shop.css"),
    ]
    served = demo_process(["-c", SERVE, json.dumps(requests)], tmp_path, **env)
    assert served.returncode == 0, served.stderr
    source = (ROOT / "shop_demo" / "static" / "shop_demo" / "shop.css").read_text()
    plain, versioned, script, insecure = json.loads(served.stdout)
    assert plain["status"] == 200
    assert plain["body"] == source
    assert versioned["status"] == 200
    assert versioned["body"] == source
    assert "immutable" in versioned["headers"]["Cache-Control"]  # hashed names never change
    assert versioned["headers"]["Strict-Transport-Security"] == "max-age=3600"
    assert script["status"] == 200
    assert script["headers"]["Content-Type"].startswith("text/javascript")
    # Plain http is sent to https.
    assert insecure["status"] == 301
    assert insecure["headers"]["Location"] == "https://localhost/static/shop_demo/shop.css"
