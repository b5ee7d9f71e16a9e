"""Visitor geolocation: the client address behind trusted proxies, looked up in a GeoIP2 database.

Addresses are only ever held in process memory (a bounded per-database LRU of lookups); nothing
here writes them to Django's cache, the database or the logs.

The database file is opened, checked, and read again when replaced (every
``GEOIP_CHECK_SECONDS``) by :mod:`personalization.profiling.geodb`.

Behind a CDN that says where the visitor is (``GEO_HEADERS``), its headers come first:
:func:`locate` reads them, and asks the database only for what they leave out.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import logging
import math
import re
import unicodedata
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote

import geoip2.errors

from ..conf import app_settings, cached_on_settings
from .geodb import OpenedDatabase, close_database, current_database, database_problem

__all__ = [
    "EMPTY_GEO",
    "GEO_HEADER_PRESETS",
    "Geo",
    "client_ip",
    "close_reader",
    "database_problem",
    "edge_geo",
    "geo_headers_problem",
    "locate",
    "lookup",
]

logger = logging.getLogger("personalization.geo")

#: X-Forwarded-For is read from its end: at most this many entries ...
MAX_FORWARDED_ENTRIES = 64
#: ... within at most this many trailing characters.
MAX_FORWARDED_CHARS = 8192
#: Longer strings are not addresses ("[" IPv6 "%" zone "]:" port fits comfortably).
MAX_ADDRESS_CHARS = 100
#: Lookups memoised per open database, by address string.
LOOKUP_CACHE_SIZE = 4096
_MAX_NAME_CHARS = 200
#: IANA time zone names are short ASCII paths ("America/Argentina/Buenos_Aires", "Etc/GMT+5").
_TIME_ZONE_RE = re.compile(r"[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+)*")
_MAX_TIME_ZONE_CHARS = 64

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Geo:
    """Where a visitor appears to be; every field may be missing."""

    country_code: str | None = None  # ISO 3166-1 alpha-2, upper-case
    country_name: str | None = None  # English
    region: str | None = None  # English name of the most specific subdivision
    city: str | None = None  # English
    latitude: float | None = None
    longitude: float | None = None
    time_zone: str | None = None  # IANA name that zoneinfo knows, e.g. "Europe/London"

    def __bool__(self) -> bool:
        return self.country_code is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "country_code": self.country_code,
            "country_name": self.country_name,
            "region": self.region,
            "city": self.city,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "time_zone": self.time_zone,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Geo:
        """Rebuild a :class:`Geo` from :meth:`as_dict` output, dropping whatever is malformed."""
        if not isinstance(data, Mapping):
            return EMPTY_GEO
        try:
            code = data.get("country_code")
            latitude = _coordinate(data.get("latitude"), 90.0)
            longitude = _coordinate(data.get("longitude"), 180.0)
            if latitude is None or longitude is None:
                latitude = longitude = None
            geo = cls(
                country_code=_country_code(code),
                country_name=_name(data.get("country_name")),
                region=_name(data.get("region")),
                city=_name(data.get("city")),
                latitude=latitude,
                longitude=longitude,
                time_zone=valid_time_zone(data.get("time_zone")),
            )
        except Exception:  # a Mapping with a broken get(): still garbage, still tolerated
            return EMPTY_GEO
        return EMPTY_GEO if geo == EMPTY_GEO else geo


EMPTY_GEO = Geo()


def _country_code(value: Any) -> str | None:
    if isinstance(value, str) and len(value) == 2 and value.isascii() and value.isalpha():
        return value.upper()
    return None


def _name(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()[:_MAX_NAME_CHARS]
    return value or None


def valid_time_zone(value: Any) -> str | None:
    """``value`` when it is the name of a time zone :mod:`zoneinfo` knows, else None."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if len(value) > _MAX_TIME_ZONE_CHARS or not _TIME_ZONE_RE.fullmatch(value):
        return None
    return value if _is_known_time_zone(value) else None


@functools.lru_cache(maxsize=1024)
def _is_known_time_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except Exception:  # not found, a directory, not a TZif file, ...
        return False
    return True


def _coordinate(value: Any, limit: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    if not math.isfinite(number) or not -limit <= number <= limit:
        return None
    return number


# --- The client address -------------------------------------------------------------------


def _parse_address(value: Any) -> _Address | None:
    """Parse one address as proxies and servers write it, or None.

    Accepts ``1.2.3.4``, ``1.2.3.4:5678``, ``2001:db8::1``, ``[2001:db8::1]``,
    ``[2001:db8::1]:443`` and ``fe80::1%eth0`` (the zone is dropped); IPv4-mapped IPv6
    addresses come back as the IPv4 address.
    """
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > MAX_ADDRESS_CHARS:
        return None
    if value[0] == "[":
        end = value.find("]")
        if end < 0:
            return None
        host, rest = value[1:end], value[end + 1 :]
        if rest and not (rest[0] == ":" and _is_port(rest[1:])):
            return None
        if ":" not in host:  # brackets are for IPv6 only
            return None
    elif value.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has at least two
        host, _, port = value.partition(":")
        if not _is_port(port):
            return None
    else:
        host = value
    if "%" in host:
        host, _, zone = host.partition("%")
        if ":" not in host or not zone:  # zones are for IPv6 only
            return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_port(value: str) -> bool:
    return 0 < len(value) <= 5 and value.isascii() and value.isdigit()


def _normalise(value: Any) -> str | None:
    address = _parse_address(value)
    return None if address is None else str(address)


def client_ip(meta: Mapping[str, str], trusted_proxy_count: int) -> str | None:
    """The visitor's address from ``request.META``, in canonical form, or None.

    With ``trusted_proxy_count == 0`` that is ``REMOTE_ADDR``. With N trusted proxies in front
    of the site it is the N-th X-Forwarded-For entry from the right: the address the outermost
    trusted proxy saw. Entries further left were written by the client and are never used;
    when the header has fewer than N entries the leftmost one is used, and without the header
    ``REMOTE_ADDR``. An unparsable chosen entry gives None rather than a neighbour, which the
    client might control.
    """
    try:
        count = int(trusted_proxy_count or 0)
    except (TypeError, ValueError):
        count = 0
    if count <= 0:
        return _normalise(meta.get("REMOTE_ADDR"))
    header = meta.get("HTTP_X_FORWARDED_FOR")
    if not isinstance(header, str) or not header.strip():
        return _normalise(meta.get("REMOTE_ADDR"))
    cut = len(header) > MAX_FORWARDED_CHARS
    if cut:
        header = header[-MAX_FORWARDED_CHARS:]
    entries = header.rsplit(",", MAX_FORWARDED_ENTRIES)
    if cut or len(entries) > MAX_FORWARDED_ENTRIES:
        # The first piece is a partial entry or the unsplit rest of the header.
        cut = True
        del entries[0]
    if count <= len(entries):
        return _normalise(entries[-count])
    if cut:  # the leftmost entry lies beyond what we are willing to read
        return None
    return _normalise(entries[0])


# --- Lookups ---------------------------------------------------------------------------------


def _is_public(address: _Address) -> bool:
    """True for globally routable unicast addresses, the only ones worth looking up."""
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global  # also catches shared address space, 100.64.0.0/10
    )


def _memoised_lookups(database: OpenedDatabase, path: str) -> Callable[[str], Geo]:
    """Lookups in one opened database, memoised by address string; the first failing lookup
    is logged, and no other in this database."""
    query, ipv6 = database.query, database.ipv6
    failure_logged = False

    def look_up(ip: str) -> Geo:
        nonlocal failure_logged
        address = _parse_address(ip)
        if address is None or not _is_public(address):
            return EMPTY_GEO
        if address.version == 6 and not ipv6:  # an IPv4-only database
            return EMPTY_GEO
        try:
            return _geo_from_response(query(address))
        except geoip2.errors.AddressNotFoundError:
            return EMPTY_GEO
        except Exception as exc:
            if not failure_logged:
                failure_logged = True
                # Only the type: some messages carry the address, which must not be logged.
                logger.warning(
                    "A GeoIP lookup in %s failed (%s); the visitor is not geolocated. "
                    "Further lookup errors are not logged.",
                    path,
                    type(exc).__name__,
                )
            return EMPTY_GEO

    return functools.lru_cache(maxsize=LOOKUP_CACHE_SIZE)(look_up)


def _geo_from_response(response: Any) -> Geo:
    country = response.country
    code = country.iso_code
    if not code:
        country = response.registered_country
        code = country.iso_code
    if not code:
        return EMPTY_GEO
    region = city = latitude = longitude = time_zone = None
    subdivisions = getattr(response, "subdivisions", None)
    if subdivisions:
        region = subdivisions.most_specific.names.get("en")
    city_record = getattr(response, "city", None)
    if city_record is not None:
        city = city_record.names.get("en")
    location = getattr(response, "location", None)
    if location is not None and location.latitude is not None and location.longitude is not None:
        latitude = float(location.latitude)
        longitude = float(location.longitude)
    if location is not None:
        time_zone = valid_time_zone(getattr(location, "time_zone", None))
    return Geo(
        country_code=code.upper(),
        country_name=country.names.get("en"),
        region=region,
        city=city,
        latitude=latitude,
        longitude=longitude,
        time_zone=time_zone,
    )


def lookup(ip: str | None) -> Geo:
    """Geolocate an address; :data:`EMPTY_GEO` when that is not possible. Never raises.

    Non-public addresses (private, loopback, link-local, multicast, reserved, unspecified,
    shared 100.64.0.0/10) are never looked up.
    """
    if not ip or not isinstance(ip, str) or len(ip) > MAX_ADDRESS_CHARS:
        return EMPTY_GEO
    try:
        database = current_database(_memoised_lookups)
        memoised = None if database is None else database.lookup
        if memoised is None:
            return EMPTY_GEO
        return memoised(ip)  # type: ignore[no-any-return]
    except Exception:  # pragma: no cover - belt and braces on the request path
        logger.warning("GeoIP lookup failed unexpectedly.", exc_info=True)
        return EMPTY_GEO


def close_reader() -> None:
    """Close and forget the process-wide reader, and which paths were already warned about."""
    close_database(forget_warnings=True)


# --- Headers of a CDN in front of the site -----------------------------------------------------

#: Where each CDN puts what it knows of the visitor: Geo field -> request header. Cloudflare
#: sends CF-IPCountry when "IP Geolocation" is on, the others with its "Add visitor location
#: headers" Managed Transform; CloudFront sends those its origin request policy names (the
#: region is the first-level subdivision, by name). "generic" is for a proxy configured to send
#: the X- headers (Fastly's VCL, nginx with a GeoIP module, ...); "fastly" is the same.
GEO_HEADER_PRESETS: dict[str, dict[str, str]] = {
    "cloudflare": {
        "country_code": "CF-IPCountry",
        "region": "CF-Region",
        "city": "CF-IPCity",
        "latitude": "CF-IPLatitude",
        "longitude": "CF-IPLongitude",
        "time_zone": "CF-Timezone",
    },
    "cloudfront": {
        "country_code": "CloudFront-Viewer-Country",
        "country_name": "CloudFront-Viewer-Country-Name",
        "region": "CloudFront-Viewer-Country-Region-Name",
        "city": "CloudFront-Viewer-City",
        "latitude": "CloudFront-Viewer-Latitude",
        "longitude": "CloudFront-Viewer-Longitude",
        "time_zone": "CloudFront-Viewer-Time-Zone",
    },
    "generic": {
        "country_code": "X-Country-Code",
        "country_name": "X-Country-Name",
        "region": "X-Region",
        "city": "X-City",
        "latitude": "X-Latitude",
        "longitude": "X-Longitude",
        "time_zone": "X-Time-Zone",
    },
}
GEO_HEADER_PRESETS["fastly"] = GEO_HEADER_PRESETS["generic"]
GEO_HEADER_FIELDS = (
    "country_code", "country_name", "region", "city", "latitude", "longitude", "time_zone",
)  # fmt: skip
#: Country codes that are no country: Cloudflare's unknown (XX), MaxMind's legacy anonymous
#: proxy, satellite, other, Asia/Pacific and Europe, and the user-assigned ZZ.
UNKNOWN_COUNTRIES = frozenset({"XX", "ZZ", "A1", "A2", "O1", "AP", "EU"})
#: Cloudflare's code for visitors who come through Tor: their location is unknown, and the
#: address is the exit node's, so the GeoIP database is not asked either.
TOR_COUNTRY = "T1"
#: A header value longer than this is not a place name (it is ignored before any work).
MAX_HEADER_CHARS = 512
_HEADER_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,99}")
_PLAIN_RE = re.compile(r"[\x20-\x24\x26-\x7e]*")
_COORDINATE_RE = re.compile(r"\s*[-+]?\d{1,3}(?:\.\d{1,12})?\s*")


def geo_headers_problem(value: Any) -> str | None:
    """What is wrong with a ``GEO_HEADERS`` value (for the system check), or None."""
    if value is None:
        return None
    if isinstance(value, str):
        if value.strip().lower() in GEO_HEADER_PRESETS:
            return None
        return f"{value!r} is not one of the presets {', '.join(sorted(GEO_HEADER_PRESETS))}."
    if not isinstance(value, Mapping):
        return "it must be None, a preset name or a dict of field -> header name."
    unknown = sorted(str(key) for key in value if key not in GEO_HEADER_FIELDS)
    if unknown:
        return (
            f"it names unknown fields ({', '.join(unknown)}); the fields are "
            f"{', '.join(GEO_HEADER_FIELDS)}."
        )
    if "country_code" not in value:
        return "it must name the header of country_code."
    bad = sorted(
        repr(header)
        for header in value.values()
        if not isinstance(header, str) or not _HEADER_NAME_RE.fullmatch(header)
    )
    if bad:
        return (
            f"{', '.join(bad)} is not a header name (letters, digits and dashes: underscores "
            "are dropped by most servers on the way)."
        )
    if ("latitude" in value) != ("longitude" in value):
        return "latitude and longitude go together: name both headers or neither."
    return None


@cached_on_settings
@functools.lru_cache(maxsize=1)
def _header_keys() -> tuple[tuple[str, str], ...]:
    """(Geo field, request.META key) of each header to read; empty when the setting is off or
    malformed (the system check says so)."""
    value = app_settings.GEO_HEADERS
    if geo_headers_problem(value) is not None or value is None:
        return ()
    mapping = GEO_HEADER_PRESETS[value.strip().lower()] if isinstance(value, str) else value
    return tuple(
        (field, "HTTP_" + header.upper().replace("-", "_"))
        for field, header in mapping.items()
        if header
    )


def _header_text(value: Any) -> str | None:
    """A header value as text: percent-encoding (CloudFront's, for non-ASCII) and UTF-8 read
    as Latin-1 (what WSGI makes of raw UTF-8 bytes) undone, control and format characters
    dropped, blanks collapsed, at most the length of a name; None when nothing is left."""
    if not isinstance(value, str) or len(value) > MAX_HEADER_CHARS:
        return None
    if _PLAIN_RE.fullmatch(value):  # printable ASCII without "%": most values
        return _name(" ".join(value.split()))
    if "%" in value:
        with contextlib.suppress(UnicodeDecodeError):  # not UTF-8: kept as it came
            value = unquote(value, errors="strict")
    if not value.isascii():
        with contextlib.suppress(UnicodeError):  # real Latin-1, or already text
            value = value.encode("latin-1").decode("utf-8")
    cleaned = "".join(
        " " if char.isspace() else char
        for char in value
        if char.isspace() or not unicodedata.category(char).startswith("C")
    )
    return _name(" ".join(cleaned.split()))


def _header_coordinate(value: str | None, limit: float) -> float | None:
    if value is None or not _COORDINATE_RE.fullmatch(value):
        return None
    return _coordinate(float(value), limit)


def edge_geo(meta: Mapping[str, Any]) -> Geo | None:
    """The location the trusted CDN's headers give (``GEO_HEADERS``); None when the setting
    is off or the country header is missing, unknown or malformed (GeoIP is asked then), and
    :data:`EMPTY_GEO` for Tor. A bad value in another header only loses that field."""
    keys = _header_keys()
    if not keys:
        return None
    raw = {field: _header_text(meta.get(key)) for field, key in keys}
    code = (raw.get("country_code") or "").upper()
    if code == TOR_COUNTRY:
        return EMPTY_GEO
    country = _country_code(code)
    if country is None or country in UNKNOWN_COUNTRIES:
        return None
    latitude = _header_coordinate(raw.get("latitude"), 90.0)
    longitude = _header_coordinate(raw.get("longitude"), 180.0)
    if latitude is None or longitude is None:
        latitude = longitude = None
    return Geo(
        country_code=country,
        country_name=raw.get("country_name"),
        region=raw.get("region"),
        city=raw.get("city"),
        latitude=latitude,
        longitude=longitude,
        time_zone=valid_time_zone(raw.get("time_zone")),
    )


def locate(meta: Mapping[str, Any]) -> Geo:
    """Where the request comes from: the trusted CDN's headers when they say, the fields they
    leave out from the GeoIP database when it places the address in the same country;
    without them, the database alone. Never raises."""
    try:
        edge = edge_geo(meta)
    except Exception:  # pragma: no cover - belt and braces on the request path
        logger.warning("Reading the CDN's location headers failed.", exc_info=True)
        edge = None
    if edge is not None and (not edge or None not in _fields(edge)):
        return edge  # Tor, or everything known
    found = lookup(client_ip(meta, _trusted_proxy_count()))
    if edge is None:
        return found
    if found.country_code != edge.country_code:
        return edge
    # The headers' own values win; coordinates are a pair, so both come from one source.
    filled = {name: value for name, value in edge.as_dict().items() if value is not None}
    return replace(found, **filled)


def _fields(geo: Geo) -> tuple[Any, ...]:
    return tuple(geo.as_dict().values())


def _trusted_proxy_count() -> int:
    try:
        return int(app_settings.TRUSTED_PROXY_COUNT or 0)
    except (TypeError, ValueError):
        return 0
