#!/usr/bin/env python
"""Fail when a string marked for translation in `personalization/` is missing from, or left
untranslated in, one of the catalogues it ships (`personalization/locale/<lang>/LC_MESSAGES`).

The catalogues are regenerated with ``makemessages`` in a temporary copy of the package, so the
checkout is never touched, and every entry of the result must have a translation that is
neither empty nor fuzzy, keep the placeholders of its original, and be in the compiled ``.mo``
file that ships beside the ``.po``. Needs GNU gettext (``xgettext``, ``msgmerge``, ``msgfmt``).

Usage: python scripts/check_translations.py [--locale de --locale fr]
Exit status: 0 when every catalogue is complete, 1 with the strings listed when one is not,
2 when gettext is missing.
"""

from __future__ import annotations

import argparse
import ast
import gettext
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "personalization"
MAKEMESSAGES_OPTIONS = ["--no-obsolete", "--add-location", "file"]
GETTEXT_TOOLS = ("xgettext", "msgmerge", "msgfmt")

# printf-style placeholders as Python formats them: %(name)s, %s, %d, %r, %.2f… (not %%).
PERCENT_PLACEHOLDER = re.compile(
    r"%(?:\([^)]*\))?[#0 +-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[diouxXeEfFgGcrsa%]"
)
BRACE_PLACEHOLDER = re.compile(r"(?<!\{)\{[^{}]*\}(?!\})")
HTML_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")


@dataclass
class Entry:
    """One message of a .po file."""

    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    locations: list[str] = field(default_factory=list)
    obsolete: bool = False

    @property
    def is_header(self) -> bool:
        return self.msgid == "" and self.msgctxt is None

    @property
    def label(self) -> str:
        where = f" ({', '.join(self.locations)})" if self.locations else ""
        context = f"[{self.msgctxt}] " if self.msgctxt else ""
        return f"{context}{self.msgid!r}{where}"

    def translations(self) -> list[str]:
        return [self.msgstr[i] for i in sorted(self.msgstr)]


def parse_po(path: Path) -> list[Entry]:
    """The entries of a .po file (the header included, obsolete ones marked)."""
    entries: list[Entry] = []
    entry = Entry()
    target: tuple[str, int] | None = None
    started = translated = False

    def begin_next_if_done() -> None:
        nonlocal entry, target, started, translated
        if translated:  # a comment or a msgid after a msgstr opens the next entry
            entries.append(entry)
            entry, target, started, translated = Entry(), None, False, False

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        obsolete = line.startswith("#~")
        if obsolete:
            line = line[2:].strip()
            if line.startswith("|"):  # the previous msgid of an obsolete fuzzy entry
                continue
        if not line:
            continue
        if line.startswith("#"):
            begin_next_if_done()
            if line.startswith("#,"):
                entry.flags.update(f.strip() for f in line[2:].split(",") if f.strip())
            elif line.startswith("#:"):
                entry.locations.extend(line[2:].split())
            continue
        if line.startswith('"'):
            if target is None:
                raise ValueError(f"{path}:{number}: a continuation line outside a message")
            value = _unquote(line, path, number)
            name, index = target
            if name == "msgstr":
                entry.msgstr[index] += value
            else:
                setattr(entry, name, getattr(entry, name) + value)
            continue
        keyword, _, rest = line.partition(" ")
        value = _unquote(rest.strip(), path, number)
        if keyword in ("msgctxt", "msgid"):
            begin_next_if_done()
            started = True
            entry.obsolete = entry.obsolete or obsolete
            setattr(entry, keyword, value)
            target = (keyword, 0)
        elif keyword == "msgid_plural":
            entry.msgid_plural = value
            target = ("msgid_plural", 0)
        elif match := re.fullmatch(r"msgstr(?:\[(\d+)\])?", keyword):
            index = int(match.group(1) or 0)
            entry.msgstr[index] = value
            target = ("msgstr", index)
            translated = True
        else:
            raise ValueError(f"{path}:{number}: unknown keyword {keyword!r}")
    if started:
        entries.append(entry)
    return entries


def _unquote(text: str, path: Path, number: int) -> str:
    if len(text) < 2 or not (text.startswith('"') and text.endswith('"')):
        raise ValueError(f"{path}:{number}: expected a quoted string, got {text!r}")
    # gettext's C escapes (\n, \t, \", \\) read the same as Python's.
    return str(ast.literal_eval(text))


def messages(entries: list[Entry]) -> list[Entry]:
    """The translatable entries: neither the header nor obsolete ones."""
    return [entry for entry in entries if not entry.is_header and not entry.obsolete]


def untranslated(entry: Entry) -> str | None:
    """Why this entry does not count as translated, or None when it does."""
    if "fuzzy" in entry.flags:
        return "fuzzy"
    expected = 2 if entry.msgid_plural is not None else 1
    texts = entry.translations()
    if len(texts) < expected or any(not text for text in texts):
        return "untranslated"
    return None


def placeholders(text: str, *, python_format: bool) -> Counter[str]:
    """The placeholders and HTML tags a translation must keep, with their counts."""
    found: Counter[str] = Counter(HTML_TAG.findall(text))
    found.update(BRACE_PLACEHOLDER.findall(text))
    if python_format:
        found.update(p for p in PERCENT_PLACEHOLDER.findall(text) if p != "%%")
    return found


def placeholder_problems(entry: Entry) -> list[str]:
    """The translations of an entry whose placeholders or HTML differ from the original's.

    A plural form may drop the count (a language might say "one" in words), so for plurals the
    placeholders of each form must be among those of the singular and plural originals.
    """
    python_format = "python-format" in entry.flags
    singular = placeholders(entry.msgid, python_format=python_format)
    problems = []
    if entry.msgid_plural is None:
        for text in entry.translations():
            if text and placeholders(text, python_format=python_format) != singular:
                problems.append(text)
        return problems
    allowed = set(singular) | set(placeholders(entry.msgid_plural, python_format=python_format))
    for text in entry.translations():
        if text and not set(placeholders(text, python_format=python_format)) <= allowed:
            problems.append(text)
    return problems


def stale_in_mo(po_path: Path, mo_path: Path) -> list[Entry]:
    """Entries of the .po whose translation the compiled .mo does not hold as written."""
    entries = messages(parse_po(po_path))
    if not mo_path.exists():
        return [entry for entry in entries if untranslated(entry) is None]
    with mo_path.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    catalog = compiled._catalog  # type: ignore[attr-defined]
    stale = []
    for entry in entries:
        if untranslated(entry) is not None:
            continue
        key = entry.msgid if entry.msgctxt is None else f"{entry.msgctxt}\x04{entry.msgid}"
        if entry.msgid_plural is None:
            ok = catalog.get(key) == entry.msgstr[0]
        else:
            ok = all(catalog.get((key, i)) == text for i, text in entry.msgstr.items())
        if not ok:
            stale.append(entry)
    return stale


def shipped_catalogues(package: Path) -> list[tuple[str, str]]:
    """(locale, domain) of every .po file the package ships."""
    found = []
    for po_path in sorted((package / "locale").glob("*/LC_MESSAGES/*.po")):
        found.append((po_path.parent.parent.name, po_path.stem))
    return found


def regenerate(package: Path, workdir: Path, locales: list[str], domains: list[str]) -> Path:
    """Copy the package into workdir and run makemessages there; returns the copy."""
    copy = workdir / package.name
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.mo"))
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    for domain in domains:
        command = [sys.executable, "-m", "django", "makemessages", "-d", domain]
        command += MAKEMESSAGES_OPTIONS
        for locale in locales:
            command += ["-l", locale]
        result = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True)
        if result.returncode:
            raise RuntimeError(f"makemessages failed:\n{result.stdout}{result.stderr}")
    return copy


def msgfmt_errors(po_path: Path) -> str:
    result = subprocess.run(
        ["msgfmt", "--check", "-o", os.devnull, str(po_path)], capture_output=True, text=True
    )
    return result.stderr.strip() if result.returncode else ""


def check(package: Path, only: list[str]) -> list[str]:
    """Every problem found, as lines to print; empty when the catalogues are complete."""
    catalogues = shipped_catalogues(package)
    if only:
        catalogues = [(locale, domain) for locale, domain in catalogues if locale in only]
        missing_locales = set(only) - {locale for locale, _ in catalogues}
        if missing_locales:
            return [f"no catalogue ships for: {', '.join(sorted(missing_locales))}"]
    if not catalogues:
        return [f"no catalogue under {package / 'locale'}"]
    locales = sorted({locale for locale, _ in catalogues})
    domains = sorted({domain for _, domain in catalogues})
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="pzn-translations-") as workdir:
        copy = regenerate(package, Path(workdir), locales, domains)
        for locale, domain in catalogues:
            name = f"{locale}/{domain}"
            shipped_po = package / "locale" / locale / "LC_MESSAGES" / f"{domain}.po"
            fresh_po = copy / "locale" / locale / "LC_MESSAGES" / f"{domain}.po"
            fresh = messages(parse_po(fresh_po))
            shipped = {(e.msgctxt, e.msgid) for e in messages(parse_po(shipped_po))}
            lines = []
            for entry in fresh:
                reason = untranslated(entry)
                if (entry.msgctxt, entry.msgid) not in shipped:
                    reason = "missing from the catalogue" + (f", {reason}" if reason else "")
                if reason:
                    lines.append(f"  {reason}: {entry.label}")
                for text in placeholder_problems(entry):
                    lines.append(f"  placeholders or HTML differ: {entry.label} -> {text!r}")
            errors = msgfmt_errors(fresh_po).replace(str(fresh_po), f"{name} (regenerated)")
            if errors:
                lines.append("  msgfmt --check: " + errors.replace("\n", "\n    "))
            stale = stale_in_mo(shipped_po, shipped_po.with_suffix(".mo"))
            for entry in stale:
                lines.append(f"  not in the compiled .mo (run compilemessages): {entry.label}")
            if lines:
                problems.append(f"{name}: {len(lines)} problem(s) among {len(fresh)} strings")
                problems.extend(lines)
            else:
                print(f"{name}: {len(fresh)} strings, all translated and compiled")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--locale", "-l", action="append", default=[], help="check only this locale (repeatable)"
    )
    args = parser.parse_args(argv)
    missing_tools = [tool for tool in GETTEXT_TOOLS if shutil.which(tool) is None]
    if missing_tools:
        print(
            f"GNU gettext is needed ({', '.join(missing_tools)} not found): "
            "apt-get install gettext, or brew install gettext.",
            file=sys.stderr,
        )
        return 2
    problems = check(PACKAGE, args.locale)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(
            "\nUpdate the catalogues from personalization/ with:\n"
            "  django-admin makemessages -a " + " ".join(MAKEMESSAGES_OPTIONS) + "\n"
            "translate the new and fuzzy entries, then run: django-admin compilemessages",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
