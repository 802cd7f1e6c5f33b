# Developer entry points. `make test` is the command CI and the README use.
#
# torch is installed FIRST and pinned: an unpinned torch in a fresh venv pulls a
# multi-GB CUDA build on Linux. Elsewhere, point pip at the CPU wheel index:
#   make venv TORCH_INDEX=https://download.pytorch.org/whl/cpu

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
TORCH_INDEX ?=
TORCH_INDEX_ARG := $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)

.PHONY: venv test test-slow test-all demo docs docs-assets release-check clean

# The stamp file re-runs the install when pyproject.toml changes.
venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q "torch==$(TORCH_VERSION)" $(TORCH_INDEX_ARG)
	@$(BIN)/python -m pip install -q -e ".[test,docs]"
	@touch $@
	@echo "venv ready: $(BIN)/gptscratch"

test: venv docs-assets
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: venv docs-assets
	$(BIN)/python -m pytest -q -m slow

test-all: venv docs-assets
	$(BIN)/python -m pytest -q

docs: venv docs-assets
	@$(BIN)/python -m pip install -q "mkdocs>=1.6" "mkdocs-material>=9.5"
	$(BIN)/mkdocs build --strict

# Mermaid for the site's diagrams, served by the site itself (no CDN): `npm pack` of the version pinned in
# docs/hooks/mermaid_local.py, checksum-checked, kept in build/docs-assets/. Fetches once; then does nothing.
docs-assets:
	@$(PYTHON) docs/hooks/mermaid_local.py

release-check: venv
	$(BIN)/python -m pytest -q -m slow tests/test_release.py

demo: venv
	$(BIN)/gptscratch train --preset quick
	$(BIN)/gptscratch generate --preset creative --prompt "The "

clean:
	rm -rf build dist *.egg-info .pytest_cache
