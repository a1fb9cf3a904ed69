# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv when it is
# missing and installs what it needs, so either works alone on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
JOBS ?= auto

.PHONY: demo test bench lab-up lab-down clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

demo: $(INSTALLED)
	$(VENV)/bin/runbook demo

test: $(INSTALLED)
	$(PY) -m pytest -n $(JOBS) -q

bench: $(INSTALLED)
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lab-up: $(INSTALLED)
	$(VENV)/bin/runbook lab up

lab-down: $(INSTALLED)
	$(VENV)/bin/runbook lab down

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
