# Two commands set up a fresh machine and run things: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0

.PHONY: setup demo test test-slow lint format docs clean

# Pinned torch goes in first: an unpinned `torch` requirement would pull the multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==$(TORCH_VERSION)
	$(BIN)/pip install -q -e ".[dev]"
	# The peer networks' tests need spandrel (+ the extra arches). Without --no-deps pip would pull a torchvision,
	# and with it a CUDA torch in place of the pinned one; spandrel runs here without torchvision (models/peers.py).
	$(BIN)/pip install -q --no-deps "spandrel>=0.4.2,<0.5" "spandrel-extra-arches>=0.2,<0.3"
	# Packed stores and streaming (data.store=packed|streaming): LitData's metadata asks for torchvision too, so it
	# goes in the same way; its other dependencies come with the dev extra.
	$(BIN)/pip install -q --no-deps "litdata>=0.2,<0.3"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/laformer-train

test: setup
	$(BIN)/pytest

test-slow: setup
	$(BIN)/pytest -m slow

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The documentation site (mkdocs.yml, docs/): strict, so a broken link or a page missing from the nav fails.
docs: setup
	$(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache
