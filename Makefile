SHELL := /bin/bash
# The course's commands. `make lab` opens the course, `make test` runs every test.
# Both set up what they need first and skip what is already done.

PYTHON   ?= python3
VENV     ?= .venv
PY       := $(VENV)/bin/python
PORT     ?= 8888
HOST     ?= 127.0.0.1
STAMP    := $(VENV)/.installed
# Real fixtures beside the checkout (used by tests; harmless when absent).
SHARED   := $(abspath ../shared/assets)
export TLWIDGETS_DATA ?= $(if $(wildcard $(SHARED)),$(SHARED),)
PIP_QUIET := --quiet --disable-pip-version-check --no-input

.PHONY: install lab test test-fast chromium fetch doctor bench bench-course lint notebooks site clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing tlwidgets and its dependencies into $(VENV) (about 2 minutes the first time)..."
	@$(PY) -m pip install $(PIP_QUIET) --upgrade "pip>=24" 2>&1 | grep -v "^WARNING: Location" || true
	@$(PY) -m pip install $(PIP_QUIET) -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" ; \
	  test $${PIPESTATUS[0]} -eq 0
	@touch $@

# Opens the course: JupyterLab on $(HOST):$(PORT), token on (printed below).
lab: install
	$(VENV)/bin/jupyter lab --no-browser --ip=$(HOST) --port=$(PORT) \
	  --ServerApp.root_dir="$(CURDIR)/notebooks" $(if $(filter 0,$(shell id -u)),--allow-root,)

# Debian's Chromium for the browser tests (never a downloaded browser).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null; \
	  else echo "Browser tests need Debian's chromium: sudo apt-get install chromium" >&2; exit 1; fi; }

# Runs the whole test suite: unit, notebook (smoke profile) and browser tests.
# TEST_JOBS=1 runs the tests one after the other (no pytest-xdist workers).
TEST_JOBS ?= 2
test: install chromium
	$(PY) -m pytest $(if $(filter 1,$(TEST_JOBS)),,-n $(TEST_JOBS) --dist loadgroup) $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -m "not notebook and not browser" $(PYTEST_ARGS)

fetch: install
	$(PY) -m tlwidgets fetch --pack $(or $(PACK),workshop)

doctor: install
	$(PY) -m tlwidgets doctor

bench: install
	$(PY) benchmarks/run.py $(BENCH)

lint: install
	$(VENV)/bin/ruff check .

# Rebuilds notebooks/NN_name.ipynb from the lesson sources lessons/NN_name.py.
notebooks: install
	$(PY) -m tools.build_notebooks

# The course site in build/site (docs/README.md). The notebooks are executed once in the
# quick profile into build/executed (again when a lesson changes; `rm -rf build/executed`
# after changing tlwidgets); SITE_NOTEBOOKS=notebooks renders them without outputs.
SITE_NOTEBOOKS ?= build/executed
LESSON_STEMS := $(basename $(notdir $(wildcard lessons/[0-9][0-9]*_*.py)))

# Each run's records file is written only once its notebook ran to the end.
build/executed/%.records.json: lessons/%.py | $(STAMP)
	$(PY) -m tools.run_notebooks --profile quick --out build/executed $*

site: install $(if $(filter build/executed,$(SITE_NOTEBOOKS)),$(LESSON_STEMS:%=build/executed/%.records.json))
	TLWIDGETS_SITE_NOTEBOOKS="$(abspath $(SITE_NOTEBOOKS))" $(PY) -m sphinx -W --keep-going -q \
	  -b html docs build/site
	@echo "The site: build/site/index.html"

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info docs/_generated docs/api docs/notebooks

# Runs every notebook (or NB="02 05") through papermill, one child process each, in
# PROFILE (or PROFILES="quick workshop"); prints wall, CPU and peak memory and merges the
# rows into benchmarks/results/course.json.
PROFILE  ?= workshop
PROFILES ?= $(PROFILE)
bench-course: install
	$(PY) -m tools.run_notebooks $(addprefix --profile ,$(PROFILES)) \
	  --results benchmarks/results/course.json $(NB)
