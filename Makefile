# The commands of the README:
#   make run   -> set up .venv (first time) and start the app on http://127.0.0.1:7860
#   make test  -> set up .venv (first time) and run lint + the whole test suite (what CI runs)
#   make test-fast -> lint + the tests not marked slow (no notebooks, browser, DDP, training runs)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint notebooks setup browser clean screenshot docs bench-app

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m app $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check gabic app tests
	$(BIN)/ruff format --check gabic app tests

# One test process per core, at most four (pytest-xdist); a test file stays in one process, and the
# files that take longest start first (tests/conftest.py: LONGEST_FIRST).
PARALLEL := -n auto --maxprocesses=4 --dist loadfile --no-loadscope-reorder

test: $(STAMP) lint
	$(BIN)/python -m pytest $(PARALLEL) --durations=10 $(PYTEST_ARGS)

# the quick tests
test-fast: $(STAMP) lint
	$(BIN)/python -m pytest -m "not slow" $(PARALLEL) --durations=5 $(PYTEST_ARGS)

# The documentation site (mkdocs.yml, docs/) into site/; --strict makes every warning an error.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The app's speed as a visitor meets it (Chromium, 30 simultaneous API users): results/bench/app-speed-*.json.
# Not a test: run it on an otherwise idle machine (pause training; see docs/benchmarks.md).
bench-app: $(STAMP)
	$(BIN)/python tests/e2e/bench_app.py $(ARGS)

notebooks: $(STAMP)
	$(BIN)/jupyter lab notebooks/

# The README screenshot: the browser test on the shipped weights and a scikit-image photo.
screenshot: $(STAMP)
	GABIC_E2E_WEIGHTS_DIR=assets/weights $(BIN)/python -m pytest -q tests/e2e -p no:cacheprovider
	cp artifacts/screenshots/latest.png docs/screenshot.png

clean:
	rm -rf $(VENV) .pytest_cache artifacts
