"""The fault suite: the demo shop served by a real server process, its cache in a Redis of
the suite's own, which the tests stop or replace by a listener that never answers.

It starts servers and seeds a catalog (about a minute on two cores), so it runs only when
asked for: ``pytest -m faults tests/faults``."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BROWSER_UA
from tests.redis_servers import RedisServer, free_port, need_redis_server

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
# Short, so that a recovered Redis is tried again within the test; production keeps 30 s.
COOLDOWN_SECONDS = 2.0


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    if "faults" in (config.getoption("markexpr") or ""):
        return
    skipped = [item for item in items if HERE in Path(item.path).parents]
    if skipped:
        config.hook.pytest_deselected(items=skipped)
        items[:] = [item for item in items if item not in skipped]


@dataclass
class Page:
    status: int
    body: str
    seconds: float
    headers: Any


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # each page is timed on its own


class Browser:
    """A browser of one visitor: its own cookies; redirects are not followed."""

    def __init__(self, base: str, **headers: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirects()
        )
        self.headers = {"User-Agent": BROWSER_UA, **headers}

    def cookie(self, name: str) -> str | None:
        return next((c.value.strip('"') for c in self.jar if c.name == name), None)

    @property
    def visitor_id(self) -> str | None:
        value = self.cookie("pzn_vid")
        return value.split(":")[0] if value else None

    def request(self, method: str, path: str, *, form: dict | None = None,
                json_body: Any = None, headers: dict | None = None) -> Page:  # fmt: skip
        import json

        data, extra = None, dict(headers or {})
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            extra["Content-Type"] = "application/x-www-form-urlencoded"
        elif json_body is not None:
            data = json.dumps(json_body).encode()
            extra["Content-Type"] = "application/json"
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers={**self.headers, **extra}
        )
        started = time.perf_counter()
        try:
            with self.opener.open(request, timeout=60) as response:
                body, status, got = response.read(), response.status, response.headers
        except urllib.error.HTTPError as error:
            body, status, got = error.read(), error.code, error.headers
        return Page(status, body.decode(errors="replace"), time.perf_counter() - started, got)

    def get(self, path: str, **kwargs: Any) -> Page:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Page:
        return self.request("POST", path, **kwargs)


def form_token(page: Page) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.body)
    assert found, "no CSRF token in the page"
    return found.group(1)


@dataclass
class Shop:
    """The running demo shop: its address, its Redis, its database file and its log."""

    base: str
    redis: RedisServer
    database: Path
    log: Path
    directory: Path
    process: subprocess.Popen = field(repr=False)

    def browser(self, **headers: str) -> Browser:
        return Browser(self.base, **headers)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _environment(directory: Path, redis: RedisServer) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.faults.demo_settings",
        "DEBUG": "1",  # the demo as `make demo` runs it: plain HTTP, its own key
        "DJANGO_DEBUG": "1",
        "PZN_FAULTS_DIR": str(directory),
        "PZN_FAULTS_COOLDOWN": str(COOLDOWN_SECONDS),
        "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
        "CELERY_BROKER_URL": "",
        "PERSONALIZATION_LOG_LEVEL": "INFO",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture(scope="session")
def shop(tmp_path_factory) -> Any:
    """The demo shop, seeded by its own ``demo_setup``, served by ``runserver`` (threaded)."""
    need_redis_server()
    directory = tmp_path_factory.mktemp("demo-shop")
    redis = RedisServer(directory / "redis").start()
    env = _environment(directory, redis)
    manage = [sys.executable, str(ROOT / "manage.py")]
    seeded = subprocess.run(
        [*manage, "demo_setup"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert seeded.returncode == 0, seeded.stderr[-4000:]
    port = free_port()
    log = directory / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    shop = Shop(f"http://127.0.0.1:{port}", redis, directory / "shop.sqlite3", log, directory,
                process)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if shop.browser().get("/").status == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None, shop.log_text()[-4000:]
            assert time.monotonic() < deadline, "the demo shop did not start"
            time.sleep(0.2)
        yield shop
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        redis.stop()
