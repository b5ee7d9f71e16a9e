"""Geolocation: client address behind proxies, GeoIP2 lookups and database problems."""

from __future__ import annotations

import logging
import math
import os
import tempfile
import threading
import time
from pathlib import Path

import geoip2.database
import maxminddb
import pytest

from personalization.profiling import geo, geodb
from personalization.profiling.geo import (
    EMPTY_GEO,
    Geo,
    client_ip,
    close_reader,
    database_problem,
    lookup,
)
from personalization.testutils import DEMO_GEOIP_RECORDS, DEMO_IPS, write_geoip_database

LONDON = Geo("GB", "United Kingdom", "England", "London", 51.5142, -0.0931, "Europe/London")

# Non-public networks, each given a record so that a lookup reaching the database would find
# one: an empty result proves the address was filtered out before the database was touched.
NON_PUBLIC_NETWORKS = [
    "0.0.0.0/8",  # "this network"; in the IPv6 tree also covers :: and ::1
    "10.0.0.0/8",
    "100.64.0.0/10",  # shared address space (carrier-grade NAT)
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/4",  # multicast, which ipaddress calls "global"
    "240.0.0.0/4",
    "2001:db8::/32",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
]
NOWHERE = {"country": "AQ", "country_name": "Antarctica", "city": "Nowhere"}
# GEOIP_CHECK_SECONDS of the tests that replace a database: long enough that the lookups right
# after a replacement surely come before the next check, short enough to wait for.
CHECK_SECONDS = 0.5

CITY_RECORDS = [
    *DEMO_GEOIP_RECORDS,
    ("2001:4860::/32", {"country": "US", "country_name": "United States"}),  # country only
    *[(network, NOWHERE) for network in NON_PUBLIC_NETWORKS],
]


@pytest.fixture(autouse=True)
def _fresh_reader():
    close_reader()
    yield
    close_reader()


@pytest.fixture
def city_db(tmp_path):
    return write_geoip_database(tmp_path / "city.mmdb", CITY_RECORDS)


@pytest.fixture
def country_db(tmp_path):
    return write_geoip_database(
        tmp_path / "country.mmdb", DEMO_GEOIP_RECORDS, database_type="GeoIP2-Country"
    )


def use_db(settings, path, check_seconds=None):
    extra = {} if check_seconds is None else {"GEOIP_CHECK_SECONDS": check_seconds}
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "GEOIP_PATH": str(path), **extra}


def staged(path, records):
    """A new database written next to ``path``, ready to be renamed over it."""
    return write_geoip_database(path.with_name(path.name + ".new"), records)


def stage_bytes(path, content):
    staging = path.with_name(path.name + ".new")
    staging.write_bytes(content)
    return staging


def after_the_check_interval():
    time.sleep(CHECK_SECONDS + 0.1)


def geo_warnings(caplog):
    return [
        r
        for r in caplog.records
        if r.name == "personalization.geo" and r.levelno >= logging.WARNING
    ]


# --- Geo -----------------------------------------------------------------------------------


def test_geo_truthiness_and_round_trip():
    assert not EMPTY_GEO
    assert not Geo(city="London")
    assert LONDON
    assert LONDON.as_dict() == {
        "country_code": "GB",
        "country_name": "United Kingdom",
        "region": "England",
        "city": "London",
        "latitude": 51.5142,
        "longitude": -0.0931,
        "time_zone": "Europe/London",
    }
    assert Geo.from_dict(LONDON.as_dict()) == LONDON
    assert Geo.from_dict(EMPTY_GEO.as_dict()) is EMPTY_GEO


@pytest.mark.parametrize("garbage", [None, [], "GB", 42, {"country_code": 5}, {}])
def test_geo_from_garbage_is_empty(garbage):
    assert Geo.from_dict(garbage) is EMPTY_GEO


def test_geo_from_dict_drops_malformed_fields():
    geo_value = Geo.from_dict(
        {
            "country_code": "gb",
            "country_name": ["United Kingdom"],
            "region": "  England  ",
            "city": "x" * 10_000,
            "latitude": 51.5,
            "longitude": math.inf,
            "extra": object(),
        }
    )
    assert geo_value.country_code == "GB"
    assert geo_value.country_name is None
    assert geo_value.region == "England"
    assert geo_value.city is not None and len(geo_value.city) == 200
    # Half a coordinate is no coordinate.
    assert (geo_value.latitude, geo_value.longitude) == (None, None)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"country_code": "GBR"}, None),
        ({"country_code": "G1"}, None),
        ({"country_code": "ÜK"}, None),
        ({"latitude": True, "longitude": 1.0}, None),
        ({"latitude": 91.0, "longitude": 1.0}, None),
        ({"latitude": "51.5", "longitude": "0.1"}, None),
        ({"latitude": math.nan, "longitude": 1.0}, None),
        ({"latitude": -90, "longitude": 180}, (-90.0, 180.0)),
    ],
)
def test_geo_from_dict_validates(data, expected):
    geo_value = Geo.from_dict(data)
    if "country_code" in data:
        assert geo_value.country_code is expected
    else:
        coordinates = (geo_value.latitude, geo_value.longitude)
        assert coordinates == (expected or (None, None))


# --- Lookups in a City database --------------------------------------------------------------


def test_city_lookup_ipv4(settings, city_db):
    use_db(settings, city_db)
    assert lookup("81.2.69.142") == LONDON
    assert lookup("89.160.20.112") == Geo(
        "SE", "Sweden", "Östergötland County", "Linköping", 58.4167, 15.6167, "Europe/Stockholm"
    )
    assert lookup(DEMO_IPS["BR"]) == Geo(
        "BR", "Brazil", "São Paulo", "São Paulo", -23.5505, -46.6333, "America/Sao_Paulo"
    )


@pytest.mark.parametrize("ip", ["2a02:d3c0::1", "2a02:d3c0:ffff:1::abcd", "2A02:D3C0:0:0::1"])
def test_city_lookup_ipv6(settings, city_db, ip):
    use_db(settings, city_db)
    assert lookup(ip) == LONDON


@pytest.mark.parametrize("ip", ["::ffff:81.2.69.142", "::ffff:5102:458e"])
def test_ipv4_mapped_address_is_looked_up_as_ipv4(settings, city_db, ip):
    use_db(settings, city_db)
    assert lookup(ip) == LONDON


def test_record_without_city_data(settings, city_db):
    use_db(settings, city_db)
    assert lookup("2001:4860:4860::8888") == Geo("US", "United States")


@pytest.mark.parametrize("country", sorted(DEMO_IPS))
def test_every_demo_ip_resolves_to_its_country(settings, city_db, country):
    use_db(settings, city_db)
    result = lookup(DEMO_IPS[country])
    assert result.country_code == country
    assert result.city and result.latitude is not None


def test_unknown_address_is_empty_without_warning(settings, city_db, caplog):
    use_db(settings, city_db)
    assert lookup("8.8.8.8") is EMPTY_GEO
    assert lookup("2600::1") is EMPTY_GEO
    assert geo_warnings(caplog) == []


@pytest.mark.parametrize(
    "ip",
    [
        "10.1.2.3",
        "172.16.5.4",
        "192.168.1.1",
        "127.0.0.1",
        "100.64.0.1",
        "100.127.255.254",
        "169.254.169.254",
        "198.18.0.1",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "0.0.0.0",
        "::",
        "::1",
        "::ffff:10.0.0.1",
        "2001:db8::1",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "fe80::1%eth0",
        "ff02::1",
        "ff0e::1",
    ],
)
def test_non_public_addresses_are_not_looked_up(settings, city_db, ip):
    use_db(settings, city_db)
    # The database itself would answer for this address...
    with geoip2.database.Reader(str(city_db)) as reader:
        raw = ip.split("%")[0].removeprefix("::ffff:")
        assert reader.city(raw).country.iso_code == "AQ"
    # ...but the lookup never asks it.
    assert lookup(ip) is EMPTY_GEO


@pytest.mark.parametrize(
    "ip", [None, "", "not-an-ip", "1.2.3.4.5", "999.1.1.1", "81.2.69.142" + " " * 200, "x" * 10_000]
)
def test_garbage_addresses(settings, city_db, ip):
    use_db(settings, city_db)
    assert lookup(ip) is EMPTY_GEO


def test_no_geoip_path_means_no_geo(settings, city_db):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "GEOIP_PATH": None}
    assert lookup("81.2.69.142") is EMPTY_GEO
    use_db(settings, city_db)
    assert lookup("81.2.69.142") == LONDON


def test_lookups_are_memoised_per_database(settings, city_db, monkeypatch):
    calls = []
    original = geoip2.database.Reader.city

    def counting_city(self, ip_address):
        calls.append(str(ip_address))
        return original(self, ip_address)

    monkeypatch.setattr(geoip2.database.Reader, "city", counting_city)
    use_db(settings, city_db)
    for _ in range(3):
        assert lookup("81.2.69.142") == LONDON
    assert calls.count("81.2.69.142") == 1
    use_db(settings, city_db)  # a settings change drops the reader and its memo
    assert lookup("81.2.69.142") == LONDON
    assert calls.count("81.2.69.142") == 2


def test_ipv6_lookup_in_an_ipv4_only_database(settings, tmp_path, caplog):
    path = write_geoip_database(tmp_path / "v4.mmdb", DEMO_GEOIP_RECORDS[:-1], ip_version=4)
    use_db(settings, path)
    assert lookup("81.2.69.142") == LONDON
    assert lookup("2a02:d3c0::1") is EMPTY_GEO
    assert geo_warnings(caplog) == []


# --- Database types ------------------------------------------------------------------------


def test_country_database(settings, country_db):
    use_db(settings, country_db)
    assert lookup("81.2.69.142") == Geo("GB", "United Kingdom")
    assert lookup("2a02:d3c0::1") == Geo("GB", "United Kingdom")
    assert lookup(DEMO_IPS["JP"]) == Geo("JP", "Japan")
    assert database_problem(country_db) is None


@pytest.mark.parametrize(
    ("database_type", "has_city"),
    [
        ("GeoIP2-City", True),
        ("GeoLite2-City", True),
        ("GeoIP2-Enterprise", True),
        ("GeoIP2-Country", False),
        ("GeoLite2-Country", False),
    ],
)
def test_database_type_detection(settings, tmp_path, database_type, has_city):
    path = write_geoip_database(
        tmp_path / "db.mmdb", DEMO_GEOIP_RECORDS, database_type=database_type
    )
    use_db(settings, path)
    expected = LONDON if has_city else Geo("GB", "United Kingdom")
    assert lookup("81.2.69.142") == expected
    assert database_problem(path) is None


def test_registered_country_is_the_fallback(settings, tmp_path):
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, database_type="GeoIP2-Country", ipv4_compatible=True)
    writer.insert_network(
        IPSet(["81.2.69.0/24"]),
        {"registered_country": {"iso_code": "GB", "names": {"en": "United Kingdom"}}},
    )
    path = tmp_path / "registered.mmdb"
    writer.to_db_file(str(path))
    use_db(settings, path)
    assert lookup("81.2.69.142") == Geo("GB", "United Kingdom")


@pytest.mark.parametrize("database_type", ["GeoLite2-ASN", "GeoIP2-Anonymous-IP"])
def test_unsupported_database_type(settings, tmp_path, caplog, database_type):
    path = write_geoip_database(
        tmp_path / "asn.mmdb", DEMO_GEOIP_RECORDS, database_type=database_type
    )
    problem = database_problem(path)
    assert problem is not None
    assert database_type in problem and "City or Country" in problem
    use_db(settings, path)
    for _ in range(3):
        assert lookup("81.2.69.142") is EMPTY_GEO
    warnings = geo_warnings(caplog)
    assert len(warnings) == 1
    assert database_type in warnings[0].getMessage()


# --- Broken databases ----------------------------------------------------------------------


def test_missing_file_warns_once_and_is_read_once_it_appears(settings, tmp_path, caplog):
    path = tmp_path / "missing.mmdb"
    new = staged(path, DEMO_GEOIP_RECORDS)
    use_db(settings, path, check_seconds=CHECK_SECONDS)
    for _ in range(5):
        assert lookup("81.2.69.142") is EMPTY_GEO
    assert lookup("89.160.20.112") is EMPTY_GEO
    warnings = geo_warnings(caplog)
    assert len(warnings) == 1
    assert str(path) in warnings[0].getMessage()
    assert "81.2.69.142" not in caplog.text

    # The file is not looked for on every request...
    os.replace(new, path)
    assert lookup("81.2.69.142") is EMPTY_GEO
    # ...but once GEOIP_CHECK_SECONDS have passed.
    after_the_check_interval()
    assert lookup("81.2.69.142") == LONDON
    assert len(geo_warnings(caplog)) == 1


def test_corrupt_file_warns_once(settings, tmp_path, caplog):
    path = tmp_path / "corrupt.mmdb"
    path.write_bytes(b"\x00\xff not a maxmind database \xab\xcd" * 100)
    use_db(settings, path)
    for _ in range(5):
        assert lookup("81.2.69.142") is EMPTY_GEO
    warnings = geo_warnings(caplog)
    assert len(warnings) == 1
    assert str(path) in warnings[0].getMessage()


def test_switching_back_to_a_broken_path_does_not_warn_again(settings, tmp_path, caplog):
    broken = tmp_path / "missing.mmdb"
    good = write_geoip_database(tmp_path / "good.mmdb", DEMO_GEOIP_RECORDS)
    use_db(settings, broken)
    assert lookup("81.2.69.142") is EMPTY_GEO
    use_db(settings, good)
    assert lookup("81.2.69.142") == LONDON
    use_db(settings, broken)
    assert lookup("81.2.69.142") is EMPTY_GEO
    assert len(geo_warnings(caplog)) == 1


def test_reader_errors_are_logged_once_without_the_address(settings, city_db, caplog, monkeypatch):
    original = geoip2.database.Reader.city

    def flaky_city(self, ip_address):
        if str(ip_address).startswith("81.2.69."):
            raise RuntimeError(f"Error looking up {ip_address}")
        return original(self, ip_address)

    monkeypatch.setattr(geoip2.database.Reader, "city", flaky_city)
    use_db(settings, city_db)
    assert lookup("81.2.69.142") is EMPTY_GEO
    assert lookup("81.2.69.143") is EMPTY_GEO
    assert lookup("89.160.20.112").city == "Linköping"
    warnings = geo_warnings(caplog)
    assert len(warnings) == 1
    assert "RuntimeError" in warnings[0].getMessage()
    assert "81.2.69" not in caplog.text


def test_reader_is_reopened_when_the_path_changes(settings, tmp_path):
    first = write_geoip_database(tmp_path / "first.mmdb", DEMO_GEOIP_RECORDS)
    second = write_geoip_database(
        tmp_path / "second.mmdb",
        [("81.2.69.0/24", {"country": "SE", "country_name": "Sweden", "city": "Linköping"})],
    )
    use_db(settings, first)
    assert lookup("81.2.69.142") == LONDON
    use_db(settings, second)
    assert lookup("81.2.69.142") == Geo("SE", "Sweden", city="Linköping")


def test_database_problem_good(city_db, country_db):
    assert database_problem(city_db) is None
    assert database_problem(str(country_db)) is None
    assert database_problem(None) is None


def test_database_problem_missing(tmp_path):
    problem = database_problem(tmp_path / "nope.mmdb")
    assert problem is not None and "does not exist" in problem


def test_database_problem_directory(tmp_path):
    problem = database_problem(tmp_path)
    assert problem is not None and "directory" in problem


@pytest.mark.parametrize("content", [b"", b"garbage" * 1000])
def test_database_problem_not_a_database(tmp_path, content):
    path = tmp_path / "bad.mmdb"
    path.write_bytes(content)
    problem = database_problem(path)
    assert problem is not None and "not a valid MaxMind DB" in problem


def test_database_problem_corrupt_search_tree(settings, tmp_path, caplog):
    path = write_geoip_database(tmp_path / "tree.mmdb", DEMO_GEOIP_RECORDS)
    data = bytearray(path.read_bytes())
    data[:256] = b"\xff" * 256  # the search tree comes first; the metadata at the end survives
    path.write_bytes(bytes(data))
    problem = database_problem(path)
    assert problem is not None and "corrupt" in problem
    use_db(settings, path)
    assert lookup("81.2.69.142") is EMPTY_GEO
    assert len(geo_warnings(caplog)) == 1


# --- A database replaced while the site runs ------------------------------------------------

SWEDEN = Geo("SE", "Sweden", city="Linköping")
LONDON_IN_SWEDEN = [
    ("81.2.69.0/24", {"country": "SE", "country_name": "Sweden", "city": "Linköping"})
]
GARBAGE = b"\x00\xff not a maxmind database \xab\xcd" * 100


def test_a_database_replaced_by_rename_is_read_after_the_check_interval(settings, city_db, caplog):
    new = staged(city_db, LONDON_IN_SWEDEN)
    use_db(settings, city_db, check_seconds=CHECK_SECONDS)
    assert lookup("81.2.69.142") == LONDON
    os.replace(new, city_db)
    # Until the next check, the database read before answers, for new addresses too.
    assert lookup("81.2.69.143") == LONDON
    assert lookup("89.160.20.112").city == "Linköping"
    after_the_check_interval()
    assert lookup("81.2.69.142") == SWEDEN  # the memo went with the old database
    assert lookup("89.160.20.112") is EMPTY_GEO  # not in the new one
    assert geo_warnings(caplog) == []
    assert any(f"new GeoIP database {city_db}" in r.getMessage() for r in caplog.records)


def test_the_check_interval_is_a_setting(settings, city_db):
    new = staged(city_db, LONDON_IN_SWEDEN)
    use_db(settings, city_db, check_seconds=0)  # every lookup looks at the file
    assert lookup("81.2.69.142") == LONDON
    os.replace(new, city_db)
    assert lookup("81.2.69.142") == SWEDEN


@pytest.mark.parametrize("value", ["soon", -1, True, math.nan, [1]])
def test_a_check_interval_that_is_not_a_number_means_the_default(settings, city_db, value):
    new = staged(city_db, LONDON_IN_SWEDEN)
    use_db(settings, city_db, check_seconds=value)
    assert lookup("81.2.69.142") == LONDON
    os.replace(new, city_db)
    assert lookup("81.2.69.143") == LONDON  # not checked before five seconds


@pytest.mark.parametrize("keep", [0, 0.5])
def test_a_database_truncated_in_place_keeps_answering(settings, city_db, caplog, keep):
    use_db(settings, city_db, check_seconds=CHECK_SECONDS)
    assert lookup("81.2.69.142") == LONDON
    os.truncate(city_db, int(city_db.stat().st_size * keep))
    # The first lookup of an address reads the database: a memory-mapped reader dies here of
    # SIGBUS, and the test process with it.
    assert lookup("89.160.20.112").city == "Linköping"
    assert geo_warnings(caplog) == []
    after_the_check_interval()
    # The truncated file is not a database: the one read before stays in use.
    assert lookup(DEMO_IPS["BR"]).country_code == "BR"
    assert lookup("2a02:d3c0::1") == LONDON
    warnings = geo_warnings(caplog)
    assert len(warnings) == 1
    assert str(city_db) in warnings[0].getMessage()
    assert "stays in use" in warnings[0].getMessage()


def test_a_garbage_file_keeps_the_old_data_and_is_logged_once(settings, city_db, caplog):
    use_db(settings, city_db, check_seconds=CHECK_SECONDS)
    assert lookup("81.2.69.142") == LONDON
    os.replace(stage_bytes(city_db, GARBAGE), city_db)
    after_the_check_interval()
    assert lookup("89.160.20.112").city == "Linköping"
    assert len(geo_warnings(caplog)) == 1
    assert "not a valid MaxMind DB" in geo_warnings(caplog)[0].getMessage()

    # More garbage, written in place this time: tried, rejected, not logged again.
    city_db.write_bytes(GARBAGE * 2)
    after_the_check_interval()
    for _ in range(5):
        assert lookup(DEMO_IPS["JP"]).country_code == "JP"
    assert len(geo_warnings(caplog)) == 1

    # A valid file is read; a breakage after it is news again.
    os.replace(staged(city_db, LONDON_IN_SWEDEN), city_db)
    after_the_check_interval()
    assert lookup("81.2.69.142") == SWEDEN
    city_db.write_bytes(GARBAGE)
    after_the_check_interval()
    assert lookup("81.2.69.142") == SWEDEN
    assert lookup("81.2.69.144") == SWEDEN
    assert len(geo_warnings(caplog)) == 2


def test_lookups_in_other_threads_go_on_while_the_file_is_replaced(settings, city_db, caplog):
    versions = [
        staged(city_db.with_name(f"v{n}.mmdb"), records)
        for n, records in enumerate([LONDON_IN_SWEDEN, CITY_RECORDS] * 5)
    ]
    use_db(settings, city_db, check_seconds=0)
    answers, errors = [], []

    def look_up(first):
        try:
            for n in range(first, first + 250):
                answers.append(lookup(f"81.2.69.{n % 250 + 1}"))
        except Exception as exc:  # pragma: no cover - what the test is looking for
            errors.append(exc)

    threads = [threading.Thread(target=look_up, args=(n * 60,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for version in versions:
        os.replace(version, city_db)
        time.sleep(0.005)
    for thread in threads:
        thread.join()
    assert errors == []
    assert set(answers) <= {LONDON, SWEDEN}
    assert geo_warnings(caplog) == []


def test_a_deleted_database_means_no_geo_logged_once(settings, city_db, caplog):
    use_db(settings, city_db, check_seconds=CHECK_SECONDS)
    assert lookup("81.2.69.142") == LONDON
    city_db.unlink()
    after_the_check_interval()
    assert lookup("81.2.69.142") is EMPTY_GEO
    assert lookup("89.160.20.112") is EMPTY_GEO
    after_the_check_interval()
    assert lookup("81.2.69.142") is EMPTY_GEO
    warnings = geo_warnings(caplog)
    assert len(warnings) == 1
    assert "does not exist" in warnings[0].getMessage()

    os.replace(staged(city_db, CITY_RECORDS), city_db)
    after_the_check_interval()
    assert lookup("81.2.69.142") == LONDON


# --- The private copy ------------------------------------------------------------------------


def mapped_files():
    """The files this process has memory-mapped, as /proc/self/maps names them."""
    maps = Path("/proc/self/maps")
    if not maps.exists():
        pytest.skip("needs /proc/self/maps")
    rows = (line.split(None, 5) for line in maps.read_text().splitlines())
    return {row[5] for row in rows if len(row) == 6}


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """The temporary directory the copies are written in, empty."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


def test_the_c_extension_reads_a_deleted_private_copy(settings, city_db, private_tmp):
    extension = pytest.importorskip("maxminddb.extension")
    use_db(settings, city_db, check_seconds=CHECK_SECONDS)
    assert lookup("81.2.69.142") == LONDON
    database = geodb.current_database(geo._memoised_lookups)
    assert database is not None and database.opened is not None
    assert database.opened.mode == maxminddb.MODE_MMAP_EXT
    assert isinstance(database.opened.reader._db_reader, extension.Reader)
    mapped = mapped_files()
    assert not any(str(city_db) in name for name in mapped)  # the original is not mapped
    copies = [name for name in mapped if f"{private_tmp}/personalization-geoip-" in name]
    assert copies and all(name.endswith("(deleted)") for name in copies)
    assert list(private_tmp.iterdir()) == []


def test_no_copy_is_left_on_disk(settings, city_db, private_tmp, caplog):
    use_db(settings, city_db, check_seconds=CHECK_SECONDS)
    assert lookup("81.2.69.142") == LONDON
    assert list(private_tmp.iterdir()) == []
    os.replace(staged(city_db, LONDON_IN_SWEDEN), city_db)
    after_the_check_interval()
    assert lookup("81.2.69.142") == SWEDEN
    os.replace(stage_bytes(city_db, GARBAGE), city_db)  # a copy that is not a database
    after_the_check_interval()
    assert lookup("81.2.69.143") == SWEDEN
    assert database_problem(city_db) is not None
    close_reader()
    assert list(private_tmp.iterdir()) == []
    assert len(geo_warnings(caplog)) == 1


def test_a_replaced_copy_is_unmapped_with_its_last_lookup(settings, city_db, private_tmp):
    def copies_mapped():
        return [name for name in mapped_files() if "personalization-geoip-" in name]

    use_db(settings, city_db, check_seconds=0)
    for records in [LONDON_IN_SWEDEN, CITY_RECORDS, LONDON_IN_SWEDEN]:
        os.replace(staged(city_db, records), city_db)
        assert lookup("81.2.69.142") in (LONDON, SWEDEN)
        assert len(copies_mapped()) == 1
    close_reader()
    assert copies_mapped() == []


def test_without_the_c_extension_the_copy_is_mapped_in_python(
    settings, city_db, private_tmp, monkeypatch
):
    monkeypatch.setattr(geodb, "MAPPED_MODE", maxminddb.MODE_MMAP)
    use_db(settings, city_db)
    assert lookup("81.2.69.142") == LONDON
    database = geodb.current_database(geo._memoised_lookups)
    assert database is not None and database.opened is not None
    assert database.opened.mode == maxminddb.MODE_MMAP
    os.truncate(city_db, 0)
    assert lookup("89.160.20.112").city == "Linköping"
    assert list(private_tmp.iterdir()) == []


def test_without_a_writable_temporary_directory_the_file_is_read_into_memory(
    settings, city_db, tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    use_db(settings, city_db, check_seconds=CHECK_SECONDS)
    assert lookup("81.2.69.142") == LONDON
    database = geodb.current_database(geo._memoised_lookups)
    assert database is not None and database.opened is not None
    assert database.opened.mode == maxminddb.MODE_MEMORY
    os.replace(staged(city_db, LONDON_IN_SWEDEN), city_db)
    after_the_check_interval()
    assert lookup("81.2.69.142") == SWEDEN
    [warning] = geo_warnings(caplog)  # once, not at every new version
    assert "private copy" in warning.getMessage() and "TMPDIR" in warning.getMessage()
    # Read into memory, the file can be truncated like a copy.
    os.truncate(city_db, 0)
    assert lookup("81.2.69.150") == SWEDEN


# --- client_ip -------------------------------------------------------------------------------


def test_remote_addr_without_proxies():
    meta = {"REMOTE_ADDR": "81.2.69.142", "HTTP_X_FORWARDED_FOR": "89.160.20.112"}
    assert client_ip(meta, 0) == "81.2.69.142"


def test_one_trusted_proxy():
    meta = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "81.2.69.142"}
    assert client_ip(meta, 1) == "81.2.69.142"


def test_two_trusted_proxies():
    meta = {
        "REMOTE_ADDR": "10.0.0.2",
        "HTTP_X_FORWARDED_FOR": "6.6.6.6, 81.2.69.142, 10.0.0.1",
    }
    assert client_ip(meta, 2) == "81.2.69.142"
    assert client_ip(meta, 1) == "10.0.0.1"


def test_spoofed_left_entries_are_ignored():
    meta = {
        "REMOTE_ADDR": "10.0.0.1",
        "HTTP_X_FORWARDED_FOR": "1.1.1.1, 8.8.8.8,81.2.69.142 ,  89.160.20.112",
    }
    assert client_ip(meta, 1) == "89.160.20.112"


def test_fewer_entries_than_trusted_proxies_uses_the_leftmost():
    meta = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "81.2.69.142, 10.0.0.1"}
    assert client_ip(meta, 3) == "81.2.69.142"


@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_forwarded_header_falls_back_to_remote_addr(header):
    meta = {"REMOTE_ADDR": "81.2.69.142"}
    if header is not None:
        meta["HTTP_X_FORWARDED_FOR"] = header
    assert client_ip(meta, 1) == "81.2.69.142"


def test_missing_remote_addr():
    assert client_ip({}, 0) is None
    assert client_ip({}, 2) is None
    assert client_ip({"HTTP_X_FORWARDED_FOR": "81.2.69.142"}, 0) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("81.2.69.142:5678", "81.2.69.142"),
        (" 81.2.69.142 ", "81.2.69.142"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("[2a02:d3c0::1]", "2a02:d3c0::1"),
        ("2A02:D3C0:0:0:0:0:0:1", "2a02:d3c0::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("[fe80::1%25eth0]:80", "fe80::1"),
        ("::ffff:81.2.69.142", "81.2.69.142"),
        ("[::ffff:81.2.69.142]:8080", "81.2.69.142"),
    ],
)
def test_address_forms_are_normalised(raw, expected):
    assert client_ip({"REMOTE_ADDR": raw}, 0) == expected
    assert client_ip({"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": f"6.6.6.6,{raw}"}, 1) == (
        expected
    )


@pytest.mark.parametrize(
    "raw",
    [
        "unknown",
        "_hidden",
        "1.2.3.4.5",
        "999.1.1.1",
        "01.2.3.4",
        "81.2.69.142:port",
        "81.2.69.142:",
        "81.2.69.142:99999999",
        "[81.2.69.142]:80",
        "[2001:db8::1",
        "[2001:db8::1]x",
        "81.2.69.142%eth0",
        "fe80::1%",
        "",
        "1" * 200,
    ],
)
def test_garbage_entries_give_none(raw):
    assert client_ip({"REMOTE_ADDR": raw}, 0) is None
    # A garbage chosen entry does not fall through to a neighbour the client may control.
    meta = {"REMOTE_ADDR": "81.2.69.142", "HTTP_X_FORWARDED_FOR": f"89.160.20.112, {raw}"}
    assert client_ip(meta, 1) is None


def test_huge_forwarded_header_is_fast_and_safe():
    junk = "garbage-entry, " * 7000  # ~100 KB
    meta = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": junk + "81.2.69.142"}
    no_commas = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "9" * 100_000}
    assert len(meta["HTTP_X_FORWARDED_FOR"]) > 100_000
    started = time.perf_counter()
    for _ in range(200):
        assert client_ip(meta, 1) == "81.2.69.142"
        assert client_ip(meta, 2) is None  # the entry is junk
        assert client_ip(meta, 100) is None  # beyond what is read: not the leftmost junk
        assert client_ip(no_commas, 1) is None
    assert time.perf_counter() - started < 1.0


def test_forwarded_entries_are_read_up_to_the_cap():
    addresses = [f"81.2.69.{i}" for i in range(1, 66)]  # 65 entries
    meta = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": ", ".join(addresses)}
    assert client_ip(meta, 64) == "81.2.69.2"
    # The 65th entry from the right lies beyond the cap; its neighbour is not used instead.
    assert client_ip(meta, 65) is None
    meta["HTTP_X_FORWARDED_FOR"] = ", ".join(addresses[1:])  # exactly 64 entries
    assert client_ip(meta, 64) == "81.2.69.2"
    assert client_ip(meta, 70) == "81.2.69.2"  # fewer than N: the leftmost


def test_client_ip_feeds_lookup(settings, city_db):
    use_db(settings, city_db)
    meta = {
        "REMOTE_ADDR": "10.0.0.1",
        "HTTP_X_FORWARDED_FOR": f"{DEMO_IPS['JP']}, [::ffff:81.2.69.142]:51234",
    }
    assert lookup(client_ip(meta, 1)) == LONDON
    assert geo.lookup(client_ip(meta, 0)) is EMPTY_GEO  # REMOTE_ADDR is a private proxy
