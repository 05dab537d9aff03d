# Two entry points for a fresh machine: `make chaos` (the chaos scenarios, reports in
# reports/latest/) and `make test` (the harness's own tests). Both run `setup` first, which
# is idempotent: engine, virtualenv from the lock file, images (pulled or built locally).
# `make test` lints (ruff) and type-checks (mypy) first, so a style or type error fails it too;
# `make lint` runs those two alone (no engine, no images).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PYTEST_FLAGS ?=
LINTED := harness tests scenarios services conftest.py

.PHONY: setup engine venv images chaos lint test bench down clean

setup: engine venv images

engine:
	@bash harness/setup/engine.sh

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	@echo "[setup] creating $(VENV) from requirements.lock" >&2
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.lock
	@$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

images: engine venv
	@$(VENV)/bin/python -m harness.images

chaos: setup
	$(VENV)/bin/pytest scenarios/ --chaos-reports=reports -p no:cacheprovider $(PYTEST_FLAGS)

lint: venv
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/mypy harness

test: setup lint
	$(VENV)/bin/pytest tests/ -p no:cacheprovider $(PYTEST_FLAGS)

bench: setup
	$(VENV)/bin/python tests/benchmarks/bench_stack.py

down: venv
	$(VENV)/bin/chaos down

clean: down
	rm -rf $(VENV) .cache
