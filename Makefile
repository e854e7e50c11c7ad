# BeaZap — the two set-up commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := $(PYTHON) -m uv
endif

.PHONY: demo test env lint web-vendor bench-dashboard bench-ingest bench-silver bench-metrics bench-ops bench-llm bench-simulator bench-governance bench-gold-partitions bench-automation bench-soak serve dagster clean

env:  ## create .venv and install the locked dependencies (installs uv first if it is missing)
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen

demo: env  ## run the whole pipeline on embedded defaults and print a summary
	$(UV) run beazap demo

# Test scratch folders live on the project's filesystem (file creation in /tmp measured 8-40x slower here).
TEST_TMPDIR ?= $(CURDIR)/.beazap/tmp

test: env  ## run the test suite (needs PostgreSQL on 127.0.0.1:5432 and Redis on :6379)
	@mkdir -p $(TEST_TMPDIR)
	@TMPDIR=$(TEST_TMPDIR) $(UV) run pytest $(PYTEST_ARGS) || { rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc; }

lint: env
	$(UV) run ruff check .
	$(UV) run ruff format --check .

serve: env
	$(UV) run beazap serve

DAGSTER_PORT ?= 3000

dagster: env  ## Dagster webserver (http://127.0.0.1:$(DAGSTER_PORT)) + daemon over the configured lake
	mkdir -p .beazap/dagster && cp orchestration/dagster.yaml .beazap/dagster/
	DAGSTER_HOME=$(CURDIR)/.beazap/dagster $(UV) run dagster dev -w workspace.yaml -p $(DAGSTER_PORT)

bench-soak: env  ## the product under traffic with a fault every 2 minutes (20 min; see benchmarks/soak.py)
	$(UV) run python -m benchmarks.soak --minutes 20 --rate 300

bench-ingest: env
	$(UV) run python -m benchmarks.ingest

bench-silver: env
	$(UV) run python -m benchmarks.silver

bench-metrics: env
	$(UV) run python -m benchmarks.metrics

bench-ops: env
	$(UV) run python -m benchmarks.ops

bench-llm: env
	$(UV) run python -m benchmarks.llm

bench-simulator: env
	$(UV) run python -m benchmarks.simulator

bench-governance: env
	$(UV) run python -m benchmarks.governance

bench-gold-partitions: env
	$(UV) run python -m benchmarks.gold_partitions

bench-automation: env  ## gold behind bronze with `dagster dev` running (a few minutes)
	$(UV) run python -m benchmarks.automation_latency --rounds 3 --timeout 300

web-vendor:  ## re-fetch the dashboard's vendored uPlot from the npm registry (pinned version + sha512)
	api/web/vendor.sh

bench-dashboard: env  ## overview load time and page weight in Chromium
	$(UV) run python -m benchmarks.dashboard

clean:
	rm -rf .beazap .venv .pytest_cache benchmarks/.work
