"""Product views recorded after the response, in batches, by a thread of the process.

A product page is recorded twice: in the visitor's profile (recently viewed, interests) and as
a ``ProductInteraction`` row for the recommender. Nothing on the page itself needs either, so
a product page whose request has not read the profile only notes the view here, in the
process; one background thread then, every ``VIEW_WRITE_DELAY_SECONDS``, adds the views to
the profiles (merged with whatever the visitors' requests saved meanwhile, as a request's own
save is) and writes the rows of all of them in one statement per batch. A page that read the
profile anyway (it rendered personalized content) records the view in the profile itself and
leaves only the row here. Either way a product page costs no statement of its own, and the
database gets one multi-row INSERT a second instead of one a page.

Nothing is lost on the way out: what is left is written when the process exits (``atexit``:
gunicorn, uWSGI and ``runserver`` workers all stop that way when they are restarted or
reloaded), and a forked child starts empty. A write that fails keeps its rows for the next
try, logged once until one succeeds. Only a process killed outright (SIGKILL, out of memory)
loses what it holds: at most the last delay's product views, never an exposure, an order or a
conversion, which are written in the request. Past :data:`MAX_ROWS` waiting (a database that
stays down), a request records its own views, as with the delay at 0.

``VIEW_WRITE_DELAY_SECONDS = 0`` records each page's view in the request, and writes its row
with the page's exposures (tests that read the rows right after a request set it, or call
:func:`flush`).
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import os
import threading
from typing import Any, NamedTuple

from django.db import close_old_connections, connections

from .conf import app_settings

logger = logging.getLogger("personalization")

MAX_ROWS = 20_000
# A batch this big is written at once, without waiting for the delay.
BATCH_ROWS = 1_000


class PendingView(NamedTuple):
    """A product view noted by a request that did not read the profile."""

    visitor_id: str
    field: str  # how the product is looked up ("" when it was known: ``known``)
    value: str
    at: float
    country: str
    known: tuple[Any, Any] | None = None  # (pk, category key), when the caller had them

    def info(self) -> tuple[Any, Any] | None:
        """(pk, category key) of the viewed product; None when it is unknown."""
        if self.known is not None:
            return self.known
        from .products import view_info

        return view_info(self.field, self.value)


class Logged(NamedTuple):
    """A pending view that a request of its visitor has added to the profile: only its row
    is left to write."""

    view: PendingView


class _Backlog:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: list[Any] = []
        self.pid = os.getpid()
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None
        self.failing = False
        self.writing = threading.Lock()

    def _this_process(self) -> None:
        """A forked child starts empty: its parent writes what it held (called under lock)."""
        if self.pid != os.getpid():
            self.pid, self.rows, self.thread = os.getpid(), [], None
            self.wake = threading.Event()
            self.writing = threading.Lock()

    def add(self, rows: list[Any]) -> bool:
        """Keep ``rows`` for the thread; False (nothing kept) when the caller must write them."""
        delay = float(app_settings.VIEW_WRITE_DELAY_SECONDS)
        if delay <= 0 or not rows:
            return False
        with self.lock:
            self._this_process()
            if len(self.rows) + len(rows) > MAX_ROWS:
                return False
            self.rows.extend(rows)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(
                    target=self._run, args=(delay,), name="pzn-deferred-writes", daemon=True
                )
                self.thread.start()
            if len(self.rows) >= BATCH_ROWS:
                self.wake.set()
        return True

    def _run(self, delay: float) -> None:
        while True:
            self.wake.wait(delay)
            self.wake.clear()
            try:
                close_old_connections()
                self.flush()
            except Exception:
                logger.exception("personalization: the background writer failed; it goes on")
            finally:
                try:
                    connections.close_all()  # this thread's connections only
                except Exception:
                    logger.debug("personalization: could not close the writer's connections")
            with self.lock:
                if not self.rows and self.pid == os.getpid():
                    self.thread = None
                    return

    def flush(self) -> int:
        """Write what is waiting; the rows of a failed write stay for the next try."""
        with self.writing:
            with self.lock:
                self._this_process()
                rows, self.rows = self.rows, []
            if not rows:
                return 0
            from .models import ProductInteraction
            from .tracking import write_rows

            entries = _into_profiles(rows)
            rows = [_applied(entry) if isinstance(entry, list) else entry for entry in entries]
            rows = [row for row in rows if row is not None]
            done = 0
            try:
                rows = _of_known_visitors(rows)
                while done < len(rows):
                    write_rows([(ProductInteraction, rows[done : done + BATCH_ROWS])])
                    done += BATCH_ROWS
            except Exception:  # the database, or anything else: the rows are kept
                if not self.failing:
                    logger.exception(
                        "personalization: could not write %d product views; kept for the next try",
                        len(rows) - done,
                    )
                self.failing = True
                with self.lock:
                    self.rows = (rows[done:] + self.rows)[-MAX_ROWS:]
                return done
            if self.failing:
                logger.info("personalization: product views are written again")
                self.failing = False
            return len(rows)

    def take_views(self, visitor_id: str) -> list[PendingView]:
        """The visitor's views that wait for their profile; only their rows are left here."""
        with self.lock:
            self._this_process()
            if not self.rows:
                return []
            taken = []
            for index, entry in enumerate(self.rows):
                if isinstance(entry, PendingView) and entry.visitor_id == visitor_id:
                    taken.append(entry)
                    self.rows[index] = Logged(entry)
            return taken

    def waiting(self) -> int:
        with self.lock:
            self._this_process()
            return len(self.rows)


def _into_profiles(entries: list[Any]) -> list[Any]:
    """Add the pending views to their visitors' profiles, one load and save a visitor; the
    result lists the rows to write (pending views become ``[view, product pk]`` pairs)."""
    from . import resilience
    from .profiling import storage

    # While the cache fails, the rows are written but the profiles miss these views: adding
    # them to the rows would take the location that only the visitors' requests know.
    profiles = resilience.cache().available
    by_visitor: dict[str, list[tuple[PendingView, Any, Any]]] = {}
    out: list[Any] = []
    for entry in entries:
        in_profile = isinstance(entry, Logged)
        if in_profile:
            entry = entry.view
        elif not isinstance(entry, PendingView):
            out.append(entry)
            continue
        try:
            info = entry.info()
        except Exception:
            logger.exception("personalization: could not look up a viewed product")
            continue
        if info is None:
            continue
        if profiles and not in_profile:
            by_visitor.setdefault(entry.visitor_id, []).append((entry, *info))
        out.append([entry, info[0]])
    for visitor_id, views in by_visitor.items():
        try:
            visitor = _stored_visitor(visitor_id, views[0][0].at)
            if visitor is None:
                continue
            for view, pk, category in views:
                visitor.record_view_at(pk, category, view.at)
            storage.save(visitor)
        except Exception:
            logger.exception("personalization: could not add product views to a profile")
    return out


def _stored_visitor(visitor_id: str, now: float) -> Any:
    """The visitor's stored profile as a request would hold it; None when it has none."""
    from .profiling import storage
    from .profiling.visitor import VisitorProfile

    loaded = storage.load_stored(visitor_id)
    if loaded is None:
        return None
    visitor = VisitorProfile(loaded.data, now=now)
    visitor.revision = loaded.revision
    if loaded.base is not None:
        visitor._base = loaded.base
        visitor.dirty = True
    return visitor


def _applied(pair: list[Any]) -> Any:
    """The ProductInteraction row of a pending view, or None when views are not logged."""
    from .models import ProductInteraction

    view, pk = pair
    if not app_settings.RECORD_PRODUCT_INTERACTIONS:
        return None
    created = dt.datetime.fromtimestamp(view.at, tz=dt.UTC)
    return ProductInteraction(
        visitor_id=view.visitor_id,
        product_id=str(pk)[:64],
        kind=ProductInteraction.VIEW,
        country=view.country,
        created_at=created,
    )


def _of_known_visitors(rows: list[Any]) -> list[Any]:
    """The rows whose visitor still has a row: a visitor who asked to be forgotten meanwhile
    (in another process) leaves nothing behind."""
    from .models import Visitor

    ids = {row.visitor_id for row in rows}  # model instances by now
    known: set[Any] = set()
    listed = list(ids)
    for start in range(0, len(listed), 500):
        known.update(
            Visitor.objects.filter(pk__in=listed[start : start + 500]).values_list("pk", flat=True)
        )
    return [row for row in rows if row.visitor_id in known]


_backlog = _Backlog()


def defer_view(
    visitor_id: str,
    field: str,
    value: Any,
    at: float,
    country: str,
    known: tuple[Any, Any] | None = None,
) -> bool:
    """Note a product view of a visitor whose profile this request has not read: the product
    whose ``field`` is ``value``, or ``known`` (pk, category key). The background writer adds
    it to the profile and writes its row. False when the caller must record it itself."""
    return _backlog.add([PendingView(visitor_id, field, str(value), at, country, known)])


def defer_views(rows: list[Any]) -> bool:
    """Hand a request's product-view rows to the background writer; False when the caller
    must write them itself (the delay is 0, or too many rows are waiting already)."""
    return _backlog.add(rows)


def flush() -> int:
    """Write every product view waiting in this process now; how many were written."""
    return _backlog.flush()


def take_views(visitor_id: str) -> list[PendingView]:
    """The views of ``visitor_id`` that wait in this process to be added to the profile: a
    request that reads the profile adds them itself, so the visitor's next page knows them
    however soon it comes (the rows are still written by the background writer)."""
    return _backlog.take_views(visitor_id)


def forget(visitor_id: str) -> None:
    """Drop the rows of a visitor being forgotten that wait in this process."""
    with _backlog.lock:
        _backlog.rows = [row for row in _backlog.rows if _visitor_of(row) != visitor_id]


def _visitor_of(entry: Any) -> Any:
    return entry.view.visitor_id if isinstance(entry, Logged) else entry.visitor_id


def waiting() -> int:
    """How many product views wait in this process."""
    return _backlog.waiting()


@atexit.register
def _write_on_exit() -> None:
    if _backlog.pid == os.getpid() and _backlog.rows:
        try:
            flush()
        except Exception:
            logger.exception("personalization: could not write the product views at exit")
