"""Test sessions for each supported Django: ``nox -s django52`` / ``nox -s django60``."""

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True


@nox.session(python="3.11")
def django52(session: nox.Session) -> None:
    """Django 5.2 LTS on Python 3.11, the oldest pair supported."""
    session.install("-e", ".[dev]", "Django>=5.2,<6.0")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python="3.12")
def django60(session: nox.Session) -> None:
    """Django 6.0 on Python 3.12."""
    session.install("-e", ".[dev]", "Django>=6.0,<6.1")
    session.run("python", "-m", "pytest", *session.posargs)
