# Two commands on a fresh machine:  `make run` (the app, locally)  and  `make test` (the suite).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
AZURITE_VERSION := 3.35.0
AZURITE := .tools/node_modules/.bin/azurite

.PHONY: run core-tools test test-all lint bench clean chromium

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(AZURITE):
	npm install --silent --no-audit --no-fund --prefix .tools azurite@$(AZURITE_VERSION)

## make run: venv + requirements + Azurite, start Azurite, then `func start` (prints the app's local URLs first).
## Core Tools (`func`) comes from PATH, or else is installed into .tools/ from npm (azure-functions-core-tools@4);
## where its binary cannot be downloaded it says so, how to install it by hand, and stops (non-zero).
run: $(VENV)/.installed $(AZURITE)
	./scripts/run-local

## make core-tools: only make sure `func` is there (the same check and install as `make run`).
core-tools:
	./scripts/run-local --core-tools-only

## make chromium: the headless browser of the page tests (Debian's package; playwright never downloads one).
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "chromium is missing: install it (sudo apt-get install -y chromium); the page tests need it"; \
	  fi; }

## make test: everything the tests need, then lint and the whole suite (Azurite is started by the tests).
test: $(VENV)/.installed $(AZURITE) chromium
	$(PY) -m ruff check .
	$(PY) -m pytest

## make test-all: also the long soak test (marked `soak`, skipped by default).
test-all: $(VENV)/.installed $(AZURITE) chromium
	$(PY) -m pytest --run-soak

lint: $(VENV)/.installed
	$(PY) -m ruff check .

bench: $(VENV)/.installed $(AZURITE)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .tools .pytest_cache .ruff_cache .hypothesis
