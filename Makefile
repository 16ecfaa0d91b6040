# restore — every task a user or CI needs, from a fresh machine with only Python 3.11 and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= ../shared/datasets
OUT    ?= out
SHELL  := /bin/bash

.PHONY: demo test test-deps bench bench-quick checkpoints cr6 gpu-kit clean help

help:
	@echo "make demo         restore the built-in sample photos with the shipped checkpoints"
	@echo "make test         run the test suite"
	@echo "make test-deps    install Chromium for the viewer test where missing (Debian; root or sudo)"
	@echo "make bench        measure everything the README claims (DATA=$(DATA)); results in bench-results/"
	@echo "make bench-quick  a short benchmark (< 5 min)"
	@echo "make checkpoints  retrain the shipped models with fixed seeds (DATA=$(DATA))"
	@echo "make cr6          train the original project's models (--preset cr6, resumable, not shipped)"
	@echo "make gpu-kit      pack .gpu/ (datasets, pinned wheels) for scripts/gpu_session.sh on a lent GPU"
	@echo "make clean        remove the environment and generated outputs"

# The environment is (re)built when pyproject.toml changes.
$(BIN)/restore: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench]'
	@touch $@

# Headless Chromium for the HTML viewer test (Debian's package; root or sudo needed).
test-deps:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi; }

demo: $(BIN)/restore
	@bash scripts/demo.sh $(OUT)/demo

test: $(BIN)/restore test-deps
	$(BIN)/python -m pytest

bench: $(BIN)/restore
	$(BIN)/python -m bench.run --data $(DATA) --out bench-results

bench-quick: $(BIN)/restore
	$(BIN)/python -m bench.run --data $(DATA) --out bench-results/quick --quick

checkpoints: $(BIN)/restore
	@bash scripts/checkpoints.sh $(DATA)

cr6: $(BIN)/restore
	@bash scripts/cr6.sh $(DATA)

# What scripts/gpu_session.sh needs on a bare GPU machine that cannot download: the datasets and
# the pinned flax/optax/pypng (pure-Python wheels; the machine brings its own CUDA JAX and the rest).
# Git-ignored.
gpu-kit: $(BIN)/restore
	@for need in train400 set12 old_photos; do [ -d "$(DATA)/$$need" ] || { echo "gpu-kit: $(DATA)/$$need not found (set DATA=...)" >&2; exit 1; }; done
	rm -rf .gpu && mkdir -p .gpu/datasets .gpu/whl
	cp -r $(DATA)/train400 $(DATA)/set12 $(DATA)/old_photos .gpu/datasets/
	$(BIN)/pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux2014_x86_64 -d .gpu/whl $$(grep -oE '"(flax|optax|pypng)==[^"]+"' pyproject.toml | tr -d '"')
	@du -sh .gpu

clean:
	rm -rf $(VENV) $(OUT) build *.egg-info .pytest_cache
