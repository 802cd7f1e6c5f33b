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

.PHONY: venv llama-cpp test test-slow test-all demo docs docs-vendor docs-assets notebooks release-check clean

# The stamp file re-runs the install when pyproject.toml changes.
venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q "torch==$(TORCH_VERSION)" $(TORCH_INDEX_ARG)
	@$(BIN)/python -m pip install -q -e ".[test,docs]"
	@touch $@
	@echo "venv ready: $(BIN)/gptscratch"

# llama.cpp's Python binding, for the GGUF export test (tests/test_gguf.py). It compiles llama.cpp from source
# (~6 minutes on 2 cores), so the wheel is built once and kept in WHEEL_CACHE; later runs install it in seconds.
# -DGGML_NATIVE=OFF: a cached wheel may be installed on another machine, so no instruction of the building
# CPU is baked in (a native build crashes with "illegal instruction" on an older CPU).
LLAMA_CPP_VERSION ?= 0.3.36
WHEEL_CACHE ?= $(HOME)/.cache/gptscratch-ci/wheels

llama-cpp: venv
	@mkdir -p "$(WHEEL_CACHE)"
	@ls "$(WHEEL_CACHE)"/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1 || \
		CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/python -m pip wheel -q --no-deps --no-cache-dir \
		"llama-cpp-python==$(LLAMA_CPP_VERSION)" -w "$(WHEEL_CACHE)"
	@$(BIN)/python -m pip install -q "$(WHEEL_CACHE)"/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl
	@echo "llama-cpp-python $(LLAMA_CPP_VERSION) installed from $(WHEEL_CACHE)"

test: venv docs-vendor
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: venv docs-vendor
	$(BIN)/python -m pytest -q -m slow

test-all: venv docs-vendor
	$(BIN)/python -m pytest -q

docs: venv docs-vendor
	@$(BIN)/python -m pip install -q "mkdocs>=1.6" "mkdocs-material>=9.5"
	$(BIN)/mkdocs build --strict

# Mermaid for the site's diagrams, served by the site itself (no CDN): `npm pack` of the version pinned in
# docs/hooks/mermaid_local.py, checksum-checked, kept in build/docs-assets/. Fetches once; then does nothing.
docs-vendor:
	@$(PYTHON) docs/hooks/mermaid_local.py

# The lessons' pictures and the numbers they quote, regenerated from real runs (training, attention, logit lens,
# positions, KV-cache speed, screenshots of the --html pages in Chromium) into docs/images/ + figures.json:
# ~5 minutes on 2 cores. Not part of `make test`; `--only NAME` of the script redoes one picture
# (benchmarks/docs_assets.py --list).
docs-assets: venv
	$(BIN)/python benchmarks/docs_assets.py

# The lessons as Jupyter notebooks (docs/notebooks.py, with jupytext): build/notebooks/NN-*.ipynb, one per lesson.
notebooks: venv
	$(BIN)/python docs/notebooks.py

release-check: venv
	$(BIN)/python -m pytest -q -m slow tests/test_release.py

demo: venv
	$(BIN)/gptscratch train --preset quick
	$(BIN)/gptscratch generate --preset creative --prompt "The "

clean:
	rm -rf build dist *.egg-info .pytest_cache
