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

# generate (on first use) -> train -> register -> serve, on the embedded defaults (configs/train.yaml).
# CLIENTELE_DEMO marks the demo: only there is the public development pseudonym key accepted (features/privacy.py).
demo: export CLIENTELE_DEMO := 1
demo: install
	$(BIN)/clientele train
	@$(BIN)/clientele keys create --name demo-$$(date +%s) \
		--scopes recommendations:read,scores:read,events:write,admin 2>/dev/null > data/demo-key.txt
	@echo ""
	@echo "API:       http://127.0.0.1:8000/docs   (key in data/demo-key.txt, header X-API-Key)"
	@echo "try:       curl -H \"X-API-Key: $$(cat data/demo-key.txt)\" 'http://127.0.0.1:8000/v1/scores?limit=3'"
	@echo "MLflow UI: $(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/data/mlflow/mlflow.db  (then http://127.0.0.1:5000)"
	@echo ""
	$(BIN)/clientele serve --port 8000

test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

bench-generate: install
	$(BIN)/python benchmarks/bench_generate.py --customers 1000000

clean:
	rm -rf $(VENV) data build *.egg-info
