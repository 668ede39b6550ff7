# Two commands do all set-up on a fresh machine:
#   make demo   the whole chain on the built-in faces, ends with results/demo/report.html
#   make test   the test suite (what .ci/run calls)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RESULTS ?= results
PYTEST_ARGS ?=

.PHONY: setup test demo lint bench

# (Re)install when the venv is missing or pyproject.toml changed.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all]'
	@touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

demo: $(STAMP)
	$(PY) -m stimuli prepare --faces orl --size 64 --name orl64 --out $(RESULTS)
