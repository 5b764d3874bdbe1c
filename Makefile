# Two commands on a fresh machine:
#   make quickstart   set everything up, then run the quickstart study
#   make test         set everything up, then run the test suite (what CI runs)
#   make test-fast    the same, only the tests that start no Ray (under 3 minutes here)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build of PyTorch. A bare `torch` requirement would pull a multi-GB CUDA build;
# on a GPU machine use e.g. `make setup TORCH=torch==2.13.0` with the CUDA index configured.
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.tunelab-installed

.PHONY: setup quickstart test test-fast clean

setup: $(STAMP)

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

quickstart: setup
	$(BIN)/tunelab run search_spaces/quickstart.yaml --name quickstart-$$(date +%Y%m%d-%H%M%S)

PYTEST := $(BIN)/python -m pytest -q --durations=10
# pytest exits 5 when it collects no test: a broken collection, so a failure, said plainly.
NO_TESTS_FAILS = rc=$$?; if [ $$rc -eq 5 ]; then echo "make $@: pytest collected no tests" >&2; exit 1; fi; exit $$rc

# Two workers, each taking whole test files (a module's fixture study runs once): most of a
# Ray test's time is waiting on processes, and two files at a time fill the two cores.
test: setup
	@$(PYTEST) -n 2 --dist loadfile; $(NO_TESTS_FAILS)

# Every test that needs no Ray process. tests/conftest.py marks `ray` each test that uses the
# `ray_runtime` fixture, and fails any test in this run that starts Ray anyway, naming it.
test-fast: setup
	@$(PYTEST) -m "not ray"; $(NO_TESTS_FAILS)

clean:
	rm -rf $(VENV) tunelab-results
