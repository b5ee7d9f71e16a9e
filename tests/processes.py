"""Django processes of their own, for tests about what several processes of one shop see.

``python -m tests.processes`` sets Django up with ``tests.process_settings`` (a shared SQLite
file, a local-memory cache of its own), then answers one JSON command per line on stdin with
one JSON line on stdout. :class:`ShopProcess` starts one and talks to it.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import traceback
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


class ShopProcess:
    """One running shop process; ``call(command, **arguments)`` runs a command there."""

    def __init__(self, database: Path, *, shared_state_seconds: float = 30, log: Path) -> None:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.process_settings",
            "PZN_PROCESS_DB": str(database),
            "PZN_SHARED_STATE_SECONDS": str(shared_state_seconds),
            "PYTHONPATH": str(ROOT),
        }
        self.log = log
        self._stderr = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.processes"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.process.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]

    def call(self, command: str, timeout: float = 60, **arguments: Any) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"command": command, **arguments}).encode() + b"\n")
        self.process.stdin.flush()
        if not self._selector.select(timeout):
            raise TimeoutError(f"{command!r} took over {timeout} s; log:\n{self._log_tail()}")
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the process ended; log:\n{self._log_tail()}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"{command!r} failed in the process:\n{answer['error']}")
        return answer["result"]

    def _log_tail(self) -> str:
        self._stderr.flush()
        return self.log.read_text(errors="replace")[-4000:]

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._selector.close()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()

    def __enter__(self) -> ShopProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# What the process can be asked to do -------------------------------------------------------
_clients: dict[str, Any] = {}


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def get(path: str, client: str = "visitor", params: dict[str, Any] | None = None) -> dict:
    """A page or an API answer, for the browser called ``client`` (cookies kept)."""
    from django.test import Client

    browser = _clients.setdefault(client, Client(HTTP_USER_AGENT=BROWSER_UA))
    response = browser.get(path, params or {})
    body = response.content.decode()
    is_json = response.get("Content-Type", "").startswith("application/json")
    return {"status": response.status_code, "body": json.loads(body) if is_json else body}


def make_products(names: list[str]) -> dict[str, int]:
    """One product per name (slug = name), created in this order; their primary keys."""
    from tests.testapp.models import Category, Product

    category, _ = Category.objects.get_or_create(slug="camping", defaults={"name": "Camping"})
    return {
        name: Product.objects.create(
            name=name.upper(), slug=name, price=Decimal("10.00"), category=category
        ).pk
        for name in names
    }


def set_price(slug: str, price: str) -> None:
    from tests.testapp.models import Product

    product = Product.objects.get(slug=slug)
    product.price = Decimal(price)
    product.save()


def edit_placement(slug: str, **fields: Any) -> None:
    """Change a placement as staff do in the admin (a save, with its signals)."""
    from personalization.models import Placement

    placement = Placement.objects.get(slug=slug)
    for name, value in fields.items():
        setattr(placement, name, value)
    placement.save()


def placements() -> list[str]:
    from personalization.models import Placement

    return sorted(Placement.objects.values_list("slug", flat=True))


def save_lists(lists: dict[str, list[str]]) -> None:
    """Replace the named lists (key "") with these product slugs, scored in order."""
    from personalization.recommendations import store
    from tests.testapp.models import Product

    pks = dict(Product.objects.values_list("slug", "pk"))
    store.save_lists(
        {
            (name, ""): [(str(pks[slug]), float(len(slugs) - i)) for i, slug in enumerate(slugs)]
            for name, slugs in lists.items()
        }
    )


def job(name: str) -> dict[str, Any] | None:
    from personalization.models import JobRun

    row = JobRun.objects.filter(name=name).values("status", "started_at", "result").first()
    return None if row is None else {**row, "started_at": str(row["started_at"])}


def forget() -> None:
    """Drop this process's copies, so that its next request reads the shared state now."""
    from personalization.recommendations import store
    from personalization.targeting import definitions

    definitions.forget_local()
    store.forget_local()


COMMANDS = {
    function.__name__: function
    for function in (
        migrate,
        get,
        make_products,
        set_price,
        edit_placement,
        placements,
        save_lists,
        job,
        forget,
    )
}


def main() -> None:
    import django

    django.setup()
    for line in sys.stdin:
        arguments = json.loads(line)
        command = COMMANDS[arguments.pop("command")]
        try:
            answer = {"result": command(**arguments)}
        except Exception:
            answer = {"error": traceback.format_exc()}
        sys.stdout.write(json.dumps(answer, default=str) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
