"""Test sessions for each supported Django: ``nox -s django52`` / ``django60`` / ``django61``,
``nox -s oscar`` for the django-oscar integration, and the whole matrix of the Python and
Django pairs Django supports: ``nox -s "matrix-3.13-django6.0"`` (``nox -l`` lists them)."""

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True


@nox.session(python="3.11")
def django52(session: nox.Session) -> None:
    """Django 5.2 LTS on Python 3.11, the oldest pair supported, with Celery and beat."""
    session.install("-e", ".[dev]", "Django>=5.2,<6.0")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python="3.12")
def django60(session: nox.Session) -> None:
    """Django 6.0 on Python 3.12, with Celery and beat."""
    session.install("-e", ".[dev]", "Django>=6.0,<6.1")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python="3.12")
def django61(session: nox.Session) -> None:
    """Django 6.1 on Python 3.12 with neither Celery nor django-celery-beat (beat supports
    Django < 6.1): the app's jobs run through personalization_jobs and in-process."""
    session.install("-e", ".[test]", "Django>=6.1,<6.2")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def oscar(session: nox.Session) -> None:
    """A django-oscar sandbox shop (tests/oscar/) with personalization.contrib.oscar and only
    the settings docs/oscar.md gives, on Django 5.2 (django-oscar 4.2.1 declares Django 4.2,
    5.2 and 6.0). sorl-thumbnail is the thumbnailer Oscar's defaults name."""
    session.install("-e", ".[test,oscar]", "Django>=5.2,<6.0", "sorl-thumbnail>=12.10,<13")
    session.run(
        "python",
        "-m",
        "pytest",
        "tests/oscar",
        "--ds=tests.oscar.settings",
        "--confcutdir=tests/oscar",
        "-p",
        "no:cacheprovider",
        *session.posargs,
    )


# Every (Python, Django) pair Django supports: 5.2 LTS on 3.11-3.14, 6.0 and 6.1 on 3.12-3.14.
MATRIX = [
    *(("3.11", "5.2"), ("3.12", "5.2"), ("3.13", "5.2"), ("3.14", "5.2")),
    *(("3.12", "6.0"), ("3.13", "6.0"), ("3.14", "6.0")),
    *(("3.12", "6.1"), ("3.13", "6.1"), ("3.14", "6.1")),
]


def _matrix_session(django: str):  # type: ignore[no-untyped-def]
    major, minor = (int(part) for part in django.split("."))
    below = f"{major}.{minor + 1}"

    def run(session: nox.Session) -> None:
        # django-celery-beat supports Django < 6.1: 6.1 runs without Celery.
        extra = ".[dev]" if (major, minor) < (6, 1) else ".[test]"
        session.install("-e", extra, f"Django>={django},<{below}")
        session.run("python", "-m", "pytest", *session.posargs)

    run.__doc__ = f"Django {django} on this Python: the suite, or the tests named after --."
    return run


for _python, _django in MATRIX:
    nox.session(python=_python, name=f"matrix-{_python}-django{_django}")(_matrix_session(_django))
