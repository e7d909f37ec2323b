# The two commands: `make run` and `make test`. Both create .venv and install into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-long lint typecheck bytecode clean operator

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP) bytecode
	$(BIN)/python stack.py

# Every process the stack and the tests start imports our code: compiled once here, not
# at each start when the environment says not to write bytecode (PYTHONDONTWRITEBYTECODE).
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q domain workflows activities api channels db tests settings.py worker.py stack.py > /dev/null

# The first operator: make operator EMAIL=ops@example.com (asks for the password).
operator: $(STAMP)
	$(BIN)/python -m api.manage create-operator --email "$(EMAIL)"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy .

# Tests run in TEST_WORKERS processes side by side (pytest-xdist), each with its own
# Temporal server, system and PostgreSQL database: most of a test's time is waiting.
TEST_WORKERS ?= 4

test: $(STAMP) lint typecheck bytecode
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

# The same suite with Hypothesis's "long" profile: many more examples, run by hand.
test-long: $(STAMP) lint typecheck bytecode
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal --hypothesis-profile=long

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
