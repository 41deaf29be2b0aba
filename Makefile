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

run: $(STAMP) web
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@echo
	@echo "  API:        http://$(HOST):$(PORT)/api/v1/"
	@echo "  Swagger UI: http://$(HOST):$(PORT)/api/v1/docs"
	@echo "  Admin:      http://$(HOST):$(PORT)/admin/  (create a login: $(PY) manage.py createsuperuser)"
	@echo "  Demo users: alice / demo-pass-123, bob / demo-pass-123"
	@if [ -f web/dist/index.html ]; then echo "  Shop pages: http://$(HOST):$(PORT)/"; \
	else echo "  Shop pages: not built (install Node.js 20.19+ with npm, then: make web)"; fi
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
	@$(MAKE) --no-print-directory web-test
	# pytest last, so its summary closes the run.
	DATABASE_URL=$(TEST_DATABASE_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) $(VENV)/bin/pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache

# Every benchmark in bench/ (each prints its own table); extra flags: make bench BENCH_ARGS="--items 5"
bench: $(STAMP)
	@set -e; for script in bench/*_bench.py; do echo "== $$script"; $(PY) $$script $(BENCH_ARGS); done

# --- Shop pages (web/: Vue 3 + TypeScript; built into web/dist, served by Django at /) ----------
.PHONY: web web-test
WEB_STAMP := web/node_modules/.installed
WEB_SOURCES := $(shell find web/src web/public -type f 2>/dev/null) web/index.html web/vite.config.ts web/env.d.ts \
	web/tsconfig.json web/package.json

$(WEB_STAMP): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $@

web/dist/index.html: $(WEB_STAMP) $(WEB_SOURCES)
	cd web && npm run build

# Builds the app when Node.js is here; without it the API runs alone (and / says how to get the app).
web:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory web/dist/index.html; \
	else echo "Node.js/npm not found: skipping the shop pages (web/). Install Node.js 20.19+ with npm, then: make web"; fi

# Schema check (src/api/schema.d.ts matches manage.py export_openapi), vue-tsc, Vitest, and the
# Playwright e2e test in Debian's Chromium (/usr/bin/chromium) against a backend it starts itself.
web-test: $(STAMP) web
	@command -v npm >/dev/null 2>&1 || { echo "web-test needs Node.js 20.19+ and npm"; exit 1; }
	cd web && BACKEND_PYTHON=$(abspath $(PY)) npm run check:schema
	cd web && npm run typecheck
	cd web && npm run test:unit
	cd web && BACKEND_PYTHON=$(abspath $(PY)) npm run test:e2e
