# Two entry points (README): `make demo` runs the product on a generated demo
# portal, `make test` runs every check. Both build .venv themselves.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint venv dev clean

$(BIN)/rop: pyproject.toml
	@$(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "ROP Report needs Python 3.11+: make $(MAKECMDGOALS) PY=python3.11")'
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $(BIN)/rop

$(VENV)/.dev: $(BIN)/rop
	$(BIN)/pip install -q -e '.[dev]'
	touch $(VENV)/.dev

venv: $(BIN)/rop
dev: $(VENV)/.dev

demo: $(BIN)/rop
	$(BIN)/rop demo

lint: $(VENV)/.dev
	$(BIN)/ruff check rop tests bench
	$(BIN)/ruff format --check rop tests bench
	$(BIN)/mypy rop

# Two workers (pytest-xdist): the suite takes about half as long on two cores
# (docs/BENCHMARKS.md "CI"). loadgroup: a module sharing a module-scoped fixture
# runs on one worker (tests/conftest.py), the fixture built once, not twice.
test: lint
	$(BIN)/pytest -q -n 2 --dist loadgroup

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
