"""The GeoIP2 database file: opening it, checking it, and reading a new version while the site
runs. :mod:`personalization.profiling.geo` does the lookups.

**A private copy, mapped.** The C extension of ``maxminddb`` (libmaxminddb) memory-maps the
file and makes a lookup about three times faster than the pure-Python reader does
(``benchmarks/bench_geoip.py``). But a mapped file that is truncated or rewritten in place
kills the process with SIGBUS at its next lookup, and what updates the database may do
exactly that. So each process copies the file, when it opens it and whenever a new version
appears, into a new private directory (``tempfile.mkdtemp``: mode 0700, in ``TMPDIR``), maps
the copy with the C extension and deletes the copy and its directory straight away. The
mapping keeps the data; with no name left, nothing can truncate or rewrite it, whatever
happens to the original. A copy is checked (metadata, database type, one lookup) before it
replaces the database in use, so a broken file changes nothing but one logged warning. (A
file rewritten in place while it is being copied gives a broken copy, which the check
usually rejects: hence the advice to replace the file by rename.)

**Memory.** Each process holds one copy, the size of the file (about 60 MB for
GeoLite2-City), in the page cache of the temporary directory's filesystem: on a disk, the
kernel can drop those pages under memory pressure and read them back; on tmpfs they are RAM
(or swap), like a copy read into the process. Sharing one copy among the processes of a
machine would save memory, but needs a shared directory that can be trusted, a name per file
version, and someone to delete copies once no process needs them, including those left by
processes that crashed or were stopped: more ways to go wrong than a few workers' copies of
the file are worth. Only a process killed in the milliseconds between writing its copy and
deleting it leaves a file behind, in a ``personalization-geoip-*`` directory.

**Threads.** A reader that was replaced is never closed explicitly, as a lookup in another
thread may still be using it; it is unmapped with its last reference.

**Fallbacks.** Without the C extension the copy is mapped by the pure-Python reader
(``MODE_MMAP``). Where a mapped file cannot be deleted (Windows) the copy is read into memory
instead (``MODE_MEMORY``). When no private copy can be written (a read-only or full
temporary directory) the original is read into memory, and a warning says so once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import geoip2.database
import geoip2.errors
import maxminddb
from django.core.signals import setting_changed
from django.dispatch import receiver

from ..conf import DEFAULTS, app_settings

logger = logging.getLogger("personalization.geo")

#: An address looked up once when a database is opened, to catch a corrupt search tree early.
PROBE_ADDRESS = "8.8.8.8"
_COPY_PREFIX = "personalization-geoip-"


def _has_extension() -> bool:
    try:
        from maxminddb import extension
    except ImportError:
        return False
    return hasattr(extension, "Reader")


#: How a private copy is opened: with libmaxminddb when it is installed.
MAPPED_MODE = maxminddb.MODE_MMAP_EXT if _has_extension() else maxminddb.MODE_MMAP


@dataclass(frozen=True, slots=True)
class OpenedDatabase:
    """A database checked and ready for lookups."""

    reader: geoip2.database.Reader
    query: Callable[..., Any]  # reader.city, .enterprise or .country
    ipv6: bool  # False for an IPv4-only tree
    mode: int  # the maxminddb MODE_* it was opened with


class _CopyFailed(Exception):
    """No private copy could be written; the original can still be read into memory."""


class _NotADatabase(Exception):
    """The copy is not a MaxMind DB file."""


def _query_method(reader: geoip2.database.Reader, database_type: str) -> Callable[..., Any] | None:
    if "City" in database_type:
        return reader.city
    if "Enterprise" in database_type:  # a superset of City
        return reader.enterprise
    if "Country" in database_type:
        return reader.country
    return None


def _mapped_copy(source: IO[bytes]) -> tuple[geoip2.database.Reader, int]:
    """A reader of a private copy of ``source``, the copy already deleted."""
    name = os.path.basename(str(source.name)) or "GeoIP.mmdb"
    try:
        directory = tempfile.mkdtemp(prefix=_COPY_PREFIX)
    except OSError as exc:
        raise _CopyFailed(exc) from exc
    copy = os.path.join(directory, name)
    try:
        try:
            with open(copy, "xb") as target:
                shutil.copyfileobj(source, target, 1 << 20)
        except OSError as exc:
            raise _CopyFailed(exc) from exc
        try:
            reader = geoip2.database.Reader(copy, mode=MAPPED_MODE)
        except OSError:
            raise
        except Exception as exc:  # the message names the copy; the logs name the original
            raise _NotADatabase(str(exc).replace(copy, str(source.name))) from None
        mode = MAPPED_MODE
        try:
            os.unlink(copy)
        except OSError:  # Windows does not delete a mapped file
            reader.close()
            reader = geoip2.database.Reader(copy, mode=maxminddb.MODE_MEMORY)
            mode = maxminddb.MODE_MEMORY
        return reader, mode
    finally:
        with contextlib.suppress(OSError):
            os.unlink(copy)
        with contextlib.suppress(OSError):
            os.rmdir(directory)


_copy_failure_logged = False


def _read(path: str) -> tuple[geoip2.database.Reader, int]:
    global _copy_failure_logged
    with open(path, "rb") as source:
        try:
            return _mapped_copy(source)
        except _CopyFailed as exc:
            cause = exc.__cause__
            source.seek(0)
            reader = geoip2.database.Reader(source, mode=maxminddb.MODE_FD)  # into memory
        if not _copy_failure_logged:
            _copy_failure_logged = True
            reason = getattr(cause, "strerror", None) or cause
            logger.warning(
                "Cannot write a private copy of the GeoIP database %s in %s (%s); it is read "
                "into memory instead, and lookups are slower. Set TMPDIR to a writable "
                "directory.",
                path,
                tempfile.gettempdir(),
                reason,
            )
        return reader, maxminddb.MODE_MEMORY


def open_database(path: str) -> tuple[OpenedDatabase | None, str]:
    """Open and check the database at ``path``: (the database, "") or (None, what is wrong)."""
    if os.path.isdir(path):
        return None, f"The GeoIP database {path} is a directory, not a MaxMind DB file."
    try:
        reader, mode = _read(path)
    except FileNotFoundError:
        return None, f"The GeoIP database {path} does not exist."
    except OSError as exc:
        return None, f"The GeoIP database {path} cannot be read: {exc.strerror or exc}."
    except Exception as exc:  # maxminddb.InvalidDatabaseError, ValueError, ...
        return None, f"The GeoIP database {path} is not a valid MaxMind DB file ({exc})."
    try:
        metadata = reader.metadata()
        database_type = str(metadata.database_type)
        query = _query_method(reader, database_type)
        if query is None:
            reader.close()
            problem = (
                f"The GeoIP database {path} is a {database_type!r} database; geolocation "
                f"needs a GeoIP2 or GeoLite2 City or Country database."
            )
            return None, problem
        with contextlib.suppress(geoip2.errors.AddressNotFoundError):
            query(PROBE_ADDRESS)
    except Exception as exc:
        reader.close()
        return None, f"The GeoIP database {path} is corrupt ({exc})."
    return OpenedDatabase(reader, query, metadata.ip_version == 6, mode), ""


def database_problem(path: Any) -> str | None:
    """What is wrong with the database file at ``path`` (for system checks), or None.

    None means a readable GeoIP2/GeoLite2 City or Country (or Enterprise) database; a ``None``
    path (geolocation off) is not a problem either.
    """
    if path is None:
        return None
    try:
        path = os.fspath(path)
    except TypeError:
        return f"The GeoIP database path must be a string or a path, not {path!r}."
    opened, problem = open_database(path)
    if opened is not None:
        opened.reader.close()  # nobody else has it
    return problem or None


def _file_stamp(path: str) -> tuple[int, int, int, int] | None:
    """What tells one version of the file from another (a rename brings a new inode, an
    in-place write a new size or mtime); None when there is no file to read."""
    try:
        stat = os.stat(path)
    except (OSError, ValueError):
        return None
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def _check_seconds() -> float:
    value = app_settings.GEOIP_CHECK_SECONDS
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        return float(DEFAULTS["GEOIP_CHECK_SECONDS"])
    return float(value)


#: Builds the lookup function of an opened database: (database, path) -> (ip: str) -> result.
LookupFactory = Callable[[OpenedDatabase, str], Callable[[str], Any]]


class Database:
    """The database at one GEOIP_PATH: the file last opened successfully with its lookup
    function, and the file checked for a new version every GEOIP_CHECK_SECONDS."""

    __slots__ = (
        "check_seconds",
        "checking",
        "lookup",
        "make_lookup",
        "next_check",
        "opened",
        "path",
        "setting",
        "stamp",
    )

    def __init__(self, setting: Any, path: str, make_lookup: LookupFactory) -> None:
        self.setting = setting  # the GEOIP_PATH value this was opened for
        self.path = path
        self.make_lookup = make_lookup
        self.opened: OpenedDatabase | None = None
        self.lookup: Callable[[str], Any] | None = None  # None when there is no database
        self.stamp: tuple[int, int, int, int] | None = None  # of the file last tried
        self.check_seconds = _check_seconds()
        self.next_check = time.monotonic() + self.check_seconds
        self.checking = threading.Lock()
        self._load(_file_stamp(path), reloading=False)

    def refresh(self) -> None:
        """Reopen the file if it changed since it was last tried; one thread checks while the
        others go on with the database they have."""
        if not self.checking.acquire(blocking=False):
            return
        try:
            now = time.monotonic()
            if now < self.next_check:
                return
            self.next_check = now + self.check_seconds
            stamp = _file_stamp(self.path)
            if stamp != self.stamp:
                self._load(stamp, reloading=True)
        finally:
            self.checking.release()

    def _load(self, stamp: tuple[int, int, int, int] | None, *, reloading: bool) -> None:
        self.stamp = stamp
        opened, problem = open_database(self.path)
        if opened is None:
            if stamp is None:  # the file is gone: no location rather than a stale one
                self.opened = self.lookup = None
            if self.opened is None:
                _warn_once(self.path, f"{problem} Visitors are not geolocated.")
            else:
                _warn_once(
                    self.path,
                    f"{problem} The database read before stays in use until a valid file "
                    f"replaces it.",
                )
            return
        if reloading:
            logger.info("Read the new GeoIP database %s.", self.path)
        _warned_paths.discard(self.path)  # the next breakage is news again
        # The database replaced is left to the garbage collector (see the module docstring).
        self.lookup = self.make_lookup(opened, self.path)
        self.opened = opened

    def close(self) -> None:
        """Forget the database; lookups already running finish with it."""
        lookup, self.opened, self.lookup = self.lookup, None, None
        cache_clear = getattr(lookup, "cache_clear", None)
        if cache_clear is not None:
            cache_clear()


def _warn_once(path: str, message: str) -> None:
    """Log a problem with the file at ``path`` once, until a valid file is read there again."""
    if path not in _warned_paths:
        _warned_paths.add(path)
        logger.warning(message)


_lock = threading.Lock()
_current: Database | None = None
_warned_paths: set[str] = set()


def current_database(make_lookup: LookupFactory) -> Database | None:
    """The process's database for the GEOIP_PATH setting, checked for a new version when it is
    time; None when geolocation is off."""
    global _current
    setting = app_settings.GEOIP_PATH
    if not setting:
        return None
    current = _current
    if current is not None and current.setting == setting:
        if time.monotonic() >= current.next_check:
            current.refresh()
        return current
    with _lock:
        current = _current
        if current is not None and current.setting == setting:
            return current
        try:
            path = os.fspath(setting)
        except TypeError:
            path = str(setting)
        opened = Database(setting, path, make_lookup)
        _current = opened
    if current is not None:
        current.close()
    return opened


def close_database(*, forget_warnings: bool) -> None:
    global _current, _copy_failure_logged
    with _lock:
        current, _current = _current, None
        if forget_warnings:
            _warned_paths.clear()
            _copy_failure_logged = False
    if current is not None:
        current.close()


@receiver(setting_changed)
def _close_on_setting_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "PERSONALIZATION":
        close_database(forget_warnings=False)
