# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM := /usr/lib/chromium/chromium

.PHONY: run test test-fast test-slow lint bench clean venv chromium

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test,dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/fieldcrm demo --if-empty
	$(BIN)/fieldcrm serve --host 127.0.0.1 --port 8000

chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else echo "Chromium is missing: run 'apt-get install -y chromium' as root" >&2; exit 1; fi; \
	fi

# Tests run in TEST_WORKERS processes (pytest-xdist): each has its own PostgreSQL database,
# SQLite files, servers on free ports and browsers. TEST_WORKERS=0 runs them in this one.
TEST_WORKERS ?= 3
XDIST = -n $(TEST_WORKERS)

# Every test: unit, integration, contract on SQLite and PostgreSQL, e2e in Chromium.
test: $(STAMP) chromium
	$(BIN)/python -m pytest -p no:cacheprovider $(XDIST) $(PYTEST_ARGS)

# Everything but the browser.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider $(XDIST) tests $(PYTEST_ARGS)

# Long property runs and soak tests.
test-slow: $(STAMP)
	FIELDCRM_SLOW=1 $(BIN)/python -m pytest -p no:cacheprovider $(XDIST) -m slow $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check server sync geo tests e2e bench
	$(BIN)/ruff format --check server sync geo tests e2e bench
	$(BIN)/mypy server sync geo

# Speed and size figures (printed, never asserted); each script takes --help.
bench: $(STAMP) chromium
	$(BIN)/python bench/api.py
	$(BIN)/python bench/sync.py
	$(BIN)/python bench/sync.py --fleet
	$(BIN)/python bench/write_cpu.py
	$(BIN)/python bench/limits.py
	$(BIN)/python bench/nearby.py --sizes 100000 --pile 10000
	$(BIN)/python bench/search.py
	$(BIN)/python bench/route.py
	$(BIN)/python bench/push.py
	$(BIN)/python bench/reports.py
	$(BIN)/python bench/campaigns.py
	$(BIN)/python bench/privacy.py
	$(BIN)/python bench/pwa.py
	$(BIN)/python bench/attachments.py
	$(BIN)/python bench/import.py
	$(BIN)/python bench/pwa_duplicates.py
	$(BIN)/python bench/map.py

clean:
	rm -rf $(VENV) fieldcrm.sqlite3*
