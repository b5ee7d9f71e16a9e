"""The wheel a shop installs: what it ships (license, types, migrations, templates, static files,
translations), what it leaves out (tests, the demo shop), and its metadata.

The wheel is built once per test session from a copy of the source tree (a build in place
would leave build/ behind and could pick up files deleted since); about two seconds.
"""

from __future__ import annotations

import email.parser
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "personalization"
REPOSITORY = "https://github.com/django-personalization/django-personalization"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    # tests/ and shop_demo/ come along, so that leaving them out is the build's doing.
    for folder in ("personalization", "tests", "shop_demo"):
        shutil.copytree(ROOT / folder, source / folder, ignore=ignore)
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = out.glob("django_personalization-*.whl")
    archive = zipfile.ZipFile(built)
    yield archive
    archive.close()


def names_of(wheel: zipfile.ZipFile) -> set[str]:
    return set(wheel.namelist())


def dist_info(wheel: zipfile.ZipFile) -> str:
    (folder,) = {name.split("/")[0] for name in wheel.namelist() if ".dist-info/" in name}
    return folder


def metadata(wheel: zipfile.ZipFile):  # type: ignore[no-untyped-def]
    text = wheel.read(f"{dist_info(wheel)}/METADATA").decode()
    return email.parser.Parser().parsestr(text)


def package_files(folder: str, pattern: str = "*") -> set[str]:
    """The files under personalization/<folder> in the source tree, as wheel paths."""
    base = PACKAGE / folder
    return {
        path.relative_to(ROOT).as_posix()
        for path in base.rglob(pattern)
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_the_license_is_shipped_and_named_in_the_metadata(wheel):
    names = names_of(wheel)
    license_path = f"{dist_info(wheel)}/licenses/LICENSE"
    assert license_path in names
    text = wheel.read(license_path).decode()
    assert text.startswith("MIT License")
    assert "django-personalization contributors" in text
    assert text == (ROOT / "LICENSE").read_text()
    meta = metadata(wheel)
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    # A PEP 639 license expression replaces the License :: classifiers.
    assert not [c for c in meta.get_all("Classifier") if c.startswith("License ::")]


def test_the_type_marker_is_shipped(wheel):
    assert "personalization/py.typed" in names_of(wheel)
    assert (PACKAGE / "py.typed").exists()


def test_migrations_templates_static_and_translations_are_shipped(wheel):
    names = names_of(wheel)
    migrations = package_files("migrations", "*.py")
    assert "personalization/migrations/0001_initial.py" in migrations
    templates = package_files("templates")
    assert "personalization/templates/personalization/banner.html" in templates
    static = package_files("static")
    assert "personalization/static/personalization/personalization.js" in static
    expected = migrations | templates | static
    if (PACKAGE / "locale").exists():
        locale = package_files("locale")
        assert any(name.endswith(".po") for name in locale)
        expected |= locale
    assert expected - names == set()
    assert "personalization/contrib/oscar/apps.py" in names
    oscar_templates = {
        path.relative_to(ROOT).as_posix()
        for path in (PACKAGE / "contrib" / "oscar").rglob("*.html")
    }
    assert oscar_templates - names == set()


def test_tests_and_the_demo_shop_are_left_out(wheel):
    names = names_of(wheel)
    assert not [n for n in names if n.startswith(("tests/", "shop_demo/", "benchmarks/"))]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    top_level = {name.split("/")[0] for name in names}
    assert top_level == {"personalization", dist_info(wheel)}


def test_the_metadata_has_the_project_urls(wheel):
    urls = dict(value.split(", ", 1) for value in metadata(wheel).get_all("Project-URL"))
    assert urls == {
        "Homepage": REPOSITORY,
        "Documentation": "https://django-personalization.readthedocs.io/",
        "Changelog": f"{REPOSITORY}/blob/main/CHANGELOG.md",
        "Issues": f"{REPOSITORY}/issues",
        "Source": REPOSITORY,
    }
    assert (ROOT / "CHANGELOG.md").exists()


def test_the_metadata_has_the_classifiers(wheel):
    classifiers = set(metadata(wheel).get_all("Classifier"))
    assert {
        "Development Status :: 4 - Beta",
        "Environment :: Web Environment",
        "Framework :: Django",
        "Framework :: Django :: 5.2",
        "Framework :: Django :: 6.0",
        "Framework :: Django :: 6.1",
        "Intended Audience :: Developers",
        "Operating System :: OS Independent",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Programming Language :: Python :: 3.14",
        "Topic :: Internet :: WWW/HTTP :: Dynamic Content",
        "Typing :: Typed",
    } <= classifiers


def test_the_dependencies_use_ua_parser_directly(wheel):
    requirements = metadata(wheel).get_all("Requires-Dist")
    plain = [r for r in requirements if "extra ==" not in r]
    assert any(r.startswith("ua-parser[regex]") for r in plain)
    assert not [r for r in plain if r.startswith("user-agents")]
    # The baseline of benchmarks/bench_user_agents.py stays installable with the bench extra.
    assert any(r.startswith("user-agents") and 'extra == "bench"' in r for r in requirements)
    assert any(r.startswith("mypy") and 'extra == "types"' in r for r in requirements)
