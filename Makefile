# The two commands a newcomer runs: `make demo` and `make test`. Everything else is a helper for them.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTHON := $(shell command -v python3.11 || command -v python3)
# implicit's ALS slows down badly when OpenBLAS spawns its own threads.
export OPENBLAS_NUM_THREADS := 1

.PHONY: install demo test bench-generate clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/clientele generate --preset beauty --customers 20000 --seed 7 --out data/demo
	$(BIN)/clientele validate --data data/demo

test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

bench-generate: install
	$(BIN)/python benchmarks/bench_generate.py --customers 1000000

clean:
	rm -rf $(VENV) data build *.egg-info
