# The two set-up-and-go commands of the README:
#   make run    # set up .venv (CPU torch first), then run the main job on the embedded default data
#   make test   # same set-up, then the test suite
# Torch goes in first, pinned, so that no later install pulls a multi-GB CUDA build; every later
# install is constrained to the same version. Elsewhere, point TORCH_INDEX at a CPU wheel index,
# e.g. make run TORCH_INDEX=https://download.pytorch.org/whl/cpu
PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
TORCH_INDEX ?=
STAMP := $(VENV)/.stamp-install
PIP := $(VENV)/bin/python -m pip

.PHONY: run test setup clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==$(TORCH_VERSION) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	echo "torch==$(TORCH_VERSION)" > $(VENV)/constraints.txt
	$(PIP) install -q -c $(VENV)/constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/wattshare run

test: $(STAMP)
	$(VENV)/bin/python -m pytest

clean:
	rm -rf $(VENV) data/output
