# One-command entry points. Everything runs from a local virtualenv in .venv.
PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: bench-report bench-recommendations demo test install lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Set up and run the demo shop on embedded defaults (SQLite, local memory, eager Celery), in
## DEBUG: the settings take production values from the environment otherwise (README).
demo: export DEBUG ?= 1
demo: $(STAMP)
	$(BIN)/python manage.py demo_setup
	@echo ""
	@echo "  Demo shop:  http://$(HOST):$(PORT)/"
	@echo "  Admin:      http://$(HOST):$(PORT)/admin/  (admin / admin)"
	@echo ""
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

## Set up and run the whole test suite: the app's tests, a fresh startproject that follows the
## README, and a django-oscar sandbox shop (in a virtualenv of its own, built by nox).
test: $(STAMP)
	$(BIN)/python -m pytest -n auto
	$(BIN)/python tests/fresh_project/run.py
	$(BIN)/nox -s oscar

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_middleware.py
	$(BIN)/python benchmarks/bench_targeting.py
	$(BIN)/python benchmarks/bench_recommendations_serving.py

# The report at 10 million exposures (needs PostgreSQL; loads its own database once).
bench-report: $(STAMP)
	$(BIN)/python benchmarks/bench_report.py

# Recommendation quality on UCI Online Retail, with the implicit library's baselines.
bench-recommendations: $(STAMP)
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/bench_recommendations.py

clean:
	rm -rf $(VENV) .nox var build dist *.egg-info

.PHONY: typecheck bench-user-agents

## mypy with the Django and DRF stubs, strict on the app (settings in pyproject.toml).
typecheck: $(STAMP)
	$(BIN)/mypy personalization

# Device classes from user agents, with the user-agents package as the baseline.
bench-user-agents: $(STAMP)
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/bench_user_agents.py
