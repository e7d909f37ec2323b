# The two commands: `make run` and `make test`. Both create .venv and install into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Bytecode is written (__pycache__ is ignored by git) even where the environment says
# not to (PYTHONDONTWRITEBYTECODE): every process the stack and the tests start imports
# our code, and each test process rewrites the test modules; without the cache each of
# them compiles everything again (about 6 s of CPU per test process).
export PYTHONDONTWRITEBYTECODE :=

# mypy keeps its cache beside the user's other caches, not in the checkout: a fresh clone
# (CI's) checks only what changed since the last run on this machine (a whole check costs
# about 15 s of CPU, taken from the tests it runs beside).
export MYPY_CACHE_DIR ?= $(HOME)/.cache/paysaga/mypy

.PHONY: run test test-long lint typecheck compose-check secrets prometheus chromium clean operator outbox reconcile books chaos bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python stack.py

# The first operator: make operator EMAIL=ops@example.com (asks for the password).
operator: $(STAMP)
	$(BIN)/python -m api.manage create-operator --email "$(EMAIL)"

# Messages waiting for an address (no mailer yet): make outbox EMAIL=buyer@example.com
outbox: $(STAMP)
	$(BIN)/python -m api.manage outbox --email "$(EMAIL)"

# Reconcile a channel's day and print what differs: make reconcile CHANNEL=alipay DAY=2026-11-29
# (DAY empty: the channel's yesterday; see README "Reconciliation").
reconcile: $(STAMP)
	$(BIN)/python -m api.manage reconcile --channel "$(CHANNEL)" $(if $(DAY),--day "$(DAY)")

# The trial balance and every ledger problem (db.reconcile); fails when the books do not hold.
books: $(STAMP)
	$(BIN)/python -m api.manage books

# Keys for every channel and the platform, into var/secrets.env (once; `make run` does the
# same): what docker-compose.yml gives its services.
secrets: $(STAMP)
	$(BIN)/python -c "import stack; stack.load_or_create_secrets()"

# docker-compose.yml is validated (no Docker engine runs here to start it): Debian's
# docker-compose, installed when missing.
compose-check:
	@command -v docker-compose >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null)
	@empty=$$(mktemp) && PAYSAGA_SECRETS_FILE=$$empty POSTGRES_PASSWORD=check \
		docker-compose -f docker-compose.yml config -q; status=$$?; rm -f $$empty; exit $$status

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy .

# Tests run in TEST_WORKERS processes side by side (pytest-xdist), each with its own
# Temporal server, systems and PostgreSQL database: a test mostly waits on the system.
# `--dist worksteal` runs our scheduler (tests/scheduling.py): each process keeps to one
# backend's system (about 10 s of CPU to start) and the long modules go out first.
TEST_WORKERS ?= 3

# mypy runs beside the tests, not before them (15 s on a fresh clone; its verdict comes
# among the tests' first lines): either failing fails `make test`, and the run ends with
# the tests' summary, slowest tests listed.
test: $(STAMP) lint compose-check prometheus chromium
	@$(BIN)/mypy . & mypy=$$!; \
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal; tests=$$?; \
	wait $$mypy; typed=$$?; [ $$tests -eq 0 ] && [ $$typed -eq 0 ]

# The same suite with Hypothesis's "long" profile: many more examples, run by hand. The
# API's contract test (tests/api/test_contract.py) then sends 100 generated requests per
# operation and role, not 3, and adds schemathesis's coverage phase.
test-long: $(STAMP) lint typecheck prometheus chromium
	PAYSAGA_TEST_EVERY_BACKEND=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal --hypothesis-profile=long

# Prometheus and promtool, from Debian's package, for the tests of deploy/prometheus and of
# our /metrics endpoints against a real server; installed only when either is missing.
prometheus:
	@if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus; \
	fi

# A chaos run (not part of `make test`): CHAOS_ORDERS orders over CHAOS_SECONDS while every
# process, PostgreSQL included, is killed and restarted; exits non-zero on any order lost or
# doubled, a ledger problem or a stuck saga. Figures printed, and written to CHAOS_SUMMARY.
CHAOS_ORDERS ?= 300
CHAOS_SECONDS ?= 120
CHAOS_SEED ?= 1
CHAOS_DATABASE ?= postgresql
CHAOS_WORKERS ?= 1
CHAOS_SUMMARY ?= var/chaos/summary.json
chaos: $(STAMP)
	$(BIN)/python -m chaos --orders $(CHAOS_ORDERS) --seconds $(CHAOS_SECONDS) \
		--seed $(CHAOS_SEED) --database $(CHAOS_DATABASE) --workers $(CHAOS_WORKERS) \
		--summary $(CHAOS_SUMMARY)

# Chromium, from Debian's package, for the pages' browser tests (tests/pages/): Playwright
# drives it by path (/usr/bin/chromium), since no browser build can be downloaded here.
chromium:
	@if ! test -x /usr/bin/chromium || ! fc-list :lang=zh | grep -q .; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-wqy-microhei; \
	fi

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

# Throughput, latency and CPU per order beside a bare Temporal saga of the same shape, on
# SQLite and PostgreSQL (the local server), in one run; prints a table, writes var/bench/*.json.
# Knobs: BENCH_ORDERS, BENCH_ROUNDS, BENCH_DATABASES, BENCH_SETTLEMENT_SCALE (e.g. full),
# BENCH_RECONCILIATION_SCALE (full = 1,000,000 rows, small = 20,000, 0 skips), BENCH_CALLBACK_RATE
# (200 requests/s) and BENCH_CALLBACK_SECONDS (10; 0 skips the callback storm).
bench: $(STAMP)
	$(BIN)/python -m bench
