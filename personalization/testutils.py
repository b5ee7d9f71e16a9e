"""Test helpers for shops and the demo: ready-made visitor profiles, and small, real
GeoIP2-layout MaxMind DB files.

:func:`make_visitor` / :func:`attach_visitor` build a ``request.visitor`` in any state a test
needs, without going through the middleware. :func:`write_geoip_database` needs the
``mmdb-writer`` package (with ``netaddr``), which comes with the ``demo`` and ``dev`` extras
of django-personalization, not with the app itself.

The networks in :data:`DEMO_GEOIP_RECORDS` are made up for the demo shop and for tests: they
are public (globally routable) addresses so that the app geolocates them, but the places given
for them are only loosely real. Never use the database written from them as real geolocation.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "DEMO_GEOIP_RECORDS",
    "DEMO_IPS",
    "attach_visitor",
    "make_visitor",
    "write_geoip_database",
]


def make_visitor(
    *,
    request: Any = None,
    visit_count: int = 1,
    referrer: Any = None,
    first_referrer: Any = None,
    geo: Any = None,
    recently_viewed: Iterable[Any] = (),
    purchased: Iterable[Any] = (),
    interests: Mapping[str, float] | None = None,
    in_control_group: bool | None = None,
    segments: Iterable[str] | None = None,
    user_id: Any = None,
    is_bot: bool = False,
    opted_out: bool = False,
    visitor_id: str | None = None,
    now: float | None = None,
) -> Any:
    """A :class:`~personalization.profiling.visitor.VisitorProfile` in the given state.

    ``referrer``/``first_referrer`` take a ``Referrer`` or a source string; ``geo`` a ``Geo``
    or a dict of its fields; ``interests`` maps category keys to scores as of ``now``.
    ``in_control_group`` and ``segments`` override what would be computed.
    """
    import time

    from .profiling.geo import Geo
    from .profiling.referrer import Referrer
    from .profiling.visitor import ProfileData, VisitorProfile, new_visitor_id

    now = time.time() if now is None else now

    def as_referrer(value: Any) -> Referrer:
        if value is None:
            return Referrer()
        return Referrer(source=value) if isinstance(value, str) else value

    data = ProfileData.new(visitor_id or new_visitor_id(), now, as_referrer(referrer))
    data.first_referrer = as_referrer(first_referrer if first_referrer is not None else referrer)
    data.visit_count = max(1, int(visit_count))
    data.recently_viewed = list(recently_viewed)
    data.purchased = [str(key) for key in purchased]
    data.interests = {str(key): [float(score), now] for key, score in (interests or {}).items()}
    data.user_id = user_id
    visitor = VisitorProfile(data, request=request, now=now, is_bot=is_bot, opted_out=opted_out)
    if geo is not None:
        visitor._geo = geo if isinstance(geo, Geo) else Geo(**geo)
    if in_control_group is not None:
        visitor._in_control_group = in_control_group
    if segments is not None:
        visitor._segments = frozenset(segments)
    return visitor


def attach_visitor(request: Any, **state: Any) -> Any:
    """Set ``request.visitor`` to :func:`make_visitor` ``(request=request, **state)``."""
    request.visitor = make_visitor(request=request, **state)
    return request.visitor


CONTINENT_NAMES = {
    "AF": "Africa",
    "AN": "Antarctica",
    "AS": "Asia",
    "EU": "Europe",
    "NA": "North America",
    "OC": "Oceania",
    "SA": "South America",
}


def _place(code_key: str, code: Any, name: Any) -> dict[str, Any]:
    place: dict[str, Any] = {}
    if code:
        place[code_key] = str(code)
    if name:
        place["names"] = {"en": str(name)}
    return place


def _geoip2_record(record: Mapping[str, Any], *, with_city: bool) -> dict[str, Any]:
    """Turn the simple record form into the nested GeoIP2 layout the geoip2 models read."""
    from mmdb_writer import MmdbF64

    if not isinstance(record, Mapping) or not record.get("country"):
        raise ValueError(f"A GeoIP record needs at least a 'country' code, got {record!r}")
    country = _place("iso_code", str(record["country"]).upper(), record.get("country_name"))
    data: dict[str, Any] = {"country": country, "registered_country": dict(country)}
    continent = record.get("continent")
    if continent:
        code = str(continent).upper()
        data["continent"] = _place("code", code, CONTINENT_NAMES.get(code))
    if not with_city:
        return data
    if record.get("region") or record.get("region_code"):
        data["subdivisions"] = [_place("iso_code", record.get("region_code"), record.get("region"))]
    if record.get("city"):
        data["city"] = {"names": {"en": str(record["city"])}}
    location: dict[str, Any] = {}
    if record.get("latitude") is not None and record.get("longitude") is not None:
        location["latitude"] = MmdbF64(float(record["latitude"]))
        location["longitude"] = MmdbF64(float(record["longitude"]))
    if record.get("time_zone"):
        location["time_zone"] = str(record["time_zone"])
    if location:
        data["location"] = location
    return data


def write_geoip_database(
    path: str | os.PathLike[str],
    records: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    database_type: str = "GeoIP2-City",
    ip_version: int = 6,
) -> Path:
    """Write a real MaxMind DB file in the GeoIP2 layout and return its path.

    ``records`` is an iterable of ``(network_cidr, record)`` pairs, where ``record`` is the
    simple form ``{"country": "GB", "country_name": "United Kingdom", "continent": "EU",
    "region": "England", "region_code": "ENG", "city": "London", "latitude": 51.5142,
    "longitude": -0.0931, "time_zone": "Europe/London"}``; every key but ``country`` is
    optional. The file holds ``country`` (and the same ``registered_country``), ``continent``,
    and, when ``database_type`` contains ``"City"`` (or ``"Enterprise"``), ``subdivisions``,
    ``city`` and ``location`` too; any other type (``"GeoIP2-Country"``, or e.g.
    ``"GeoLite2-ASN"`` to test an unsupported database) gets the country layout.

    With ``ip_version=6`` (the default, like MaxMind's own files) IPv4 networks are stored in
    the IPv4 subtree (``::/96``) of an IPv6 tree, so both IPv4 and IPv6 addresses can be looked
    up. Unlike MaxMind's files the tree has no ``::ffff:0:0/96`` alias: IPv4-mapped addresses
    resolve only through code that unmaps them first, as :mod:`personalization.profiling.geo`
    does.
    """
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    if ip_version not in (4, 6):
        raise ValueError(f"ip_version must be 4 or 6, not {ip_version!r}")
    with_city = "City" in database_type or "Enterprise" in database_type
    writer = MMDBWriter(
        ip_version=ip_version,
        database_type=database_type,
        languages=["en"],
        description={"en": f"django-personalization test {database_type} database"},
        ipv4_compatible=ip_version == 6,
    )
    for network, record in records:
        writer.insert_network(IPSet([network]), _geoip2_record(record, with_city=with_city))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer.to_db_file(os.fspath(path))
    return path


def _rec(
    country: str,
    country_name: str,
    continent: str,
    region: str,
    region_code: str,
    city: str,
    latitude: float,
    longitude: float,
    time_zone: str,
) -> dict[str, Any]:
    return {
        "country": country,
        "country_name": country_name,
        "continent": continent,
        "region": region,
        "region_code": region_code,
        "city": city,
        "latitude": latitude,
        "longitude": longitude,
        "time_zone": time_zone,
    }


# fmt: off
_LONDON = _rec("GB", "United Kingdom", "EU", "England", "ENG", "London", 51.5142, -0.0931,
               "Europe/London")

#: Pretend networks for the demo shop and for tests, one ``(network, record)`` pair each. They
#: do not overlap and all are public (``ipaddress.ip_network(n).is_global``). The first three
#: are the networks MaxMind's own test databases use for the same places.
DEMO_GEOIP_RECORDS: list[tuple[str, dict[str, Any]]] = [
    # e.g. 81.2.69.142
    ("81.2.69.0/24", _LONDON),
    # e.g. 89.160.20.112
    ("89.160.20.0/24", _rec("SE", "Sweden", "EU", "Östergötland County", "E", "Linköping",
                            58.4167, 15.6167, "Europe/Stockholm")),
    # e.g. 216.160.83.56
    ("216.160.83.0/24", _rec("US", "United States", "NA", "Washington", "WA", "Milton",
                             47.2513, -122.3149, "America/Los_Angeles")),
    # e.g. 71.190.10.20
    ("71.190.10.0/24", _rec("US", "United States", "NA", "New York", "NY", "New York",
                            40.7128, -74.0060, "America/New_York")),
    # e.g. 85.214.132.117
    ("85.214.132.0/24", _rec("DE", "Germany", "EU", "Land Berlin", "BE", "Berlin",
                             52.5200, 13.4050, "Europe/Berlin")),
    # e.g. 82.64.16.50
    ("82.64.16.0/24", _rec("FR", "France", "EU", "Île-de-France", "IDF", "Paris",
                           48.8566, 2.3522, "Europe/Paris")),
    # e.g. 88.26.241.20
    ("88.26.241.0/24", _rec("ES", "Spain", "EU", "Madrid", "MD", "Madrid",
                            40.4168, -3.7038, "Europe/Madrid")),
    # e.g. 93.45.16.30
    ("93.45.16.0/24", _rec("IT", "Italy", "EU", "Lazio", "62", "Rome",
                           41.9028, 12.4964, "Europe/Rome")),
    # e.g. 77.248.16.40
    ("77.248.16.0/24", _rec("NL", "Netherlands", "EU", "North Holland", "NH", "Amsterdam",
                            52.3676, 4.9041, "Europe/Amsterdam")),
    # e.g. 126.10.20.30
    ("126.10.20.0/24", _rec("JP", "Japan", "AS", "Tokyo", "13", "Tokyo",
                            35.6762, 139.6503, "Asia/Tokyo")),
    # e.g. 1.128.10.20
    ("1.128.10.0/24", _rec("AU", "Australia", "OC", "New South Wales", "NSW", "Sydney",
                           -33.8688, 151.2093, "Australia/Sydney")),
    # e.g. 177.32.10.20
    ("177.32.10.0/24", _rec("BR", "Brazil", "SA", "São Paulo", "SP", "São Paulo",
                            -23.5505, -46.6333, "America/Sao_Paulo")),
    # e.g. 99.224.10.20
    ("99.224.10.0/24", _rec("CA", "Canada", "NA", "Ontario", "ON", "Toronto",
                            43.6532, -79.3832, "America/Toronto")),
    # e.g. 2a02:d3c0::1 (IPv6)
    ("2a02:d3c0::/32", _LONDON),
]
# fmt: on

#: One pretend visitor address per country of :data:`DEMO_GEOIP_RECORDS`.
DEMO_IPS: dict[str, str] = {
    "GB": "81.2.69.142",
    "SE": "89.160.20.112",
    "US": "216.160.83.56",
    "DE": "85.214.132.117",
    "FR": "82.64.16.50",
    "ES": "88.26.241.20",
    "IT": "93.45.16.30",
    "NL": "77.248.16.40",
    "JP": "126.10.20.30",
    "AU": "1.128.10.20",
    "BR": "177.32.10.20",
    "CA": "99.224.10.20",
}
