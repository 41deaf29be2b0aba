# The two set-up commands: `make run` and `make test`. Everything installs into .venv from requirements/.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format migrate bench clean

$(STAMP): requirements/base.txt requirements/dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "Need $(PYTHON) (set PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@echo
	@echo "  API:        http://$(HOST):$(PORT)/api/v1/"
	@echo "  Swagger UI: http://$(HOST):$(PORT)/api/v1/docs"
	@echo "  Admin:      http://$(HOST):$(PORT)/admin/  (create a login: $(PY) manage.py createsuperuser)"
	@echo "  Demo users: alice / demo-pass-123, bob / demo-pass-123"
	@echo
	@export PUBLIC_BASE_URL=$${PUBLIC_BASE_URL:-http://$(HOST):$(PORT)}; \
	if [ -n "$$REDIS_URL" ]; then \
		echo "Broker: Redis ($$REDIS_URL); starting a Dramatiq worker and the sweeper scheduler beside the API."; \
		$(PY) manage.py rundramatiq --processes 1 --threads 4 & worker=$$!; \
		$(PY) manage.py run_scheduler & scheduler=$$!; \
		trap 'kill $$worker $$scheduler 2>/dev/null' EXIT INT TERM; \
		$(PY) -m gunicorn core.wsgi:application --bind $(HOST):$(PORT) --workers 2 --threads 8 --access-logfile -; \
	else \
		echo "Broker: embedded (no REDIS_URL); the worker and the sweeper run inside the API process."; \
		RUN_EMBEDDED_WORKER=1 $(PY) -m gunicorn core.wsgi:application --bind $(HOST):$(PORT) --workers 1 --threads 8 \
			--access-logfile -; \
	fi

test: $(STAMP)
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DATABASE_URL=$(TEST_DATABASE_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) $(VENV)/bin/pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
