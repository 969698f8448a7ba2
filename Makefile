# tinylm: two commands on a fresh machine.
#   make demo   -- virtual environment, install, train a char-level MLP LM on Tiny Shakespeare, sample
#   make test   -- install the test dependencies and run the whole suite (notebooks included)
#   make notebooks -- install, then open the notebooks in JupyterLab
#   make notebooks-execute -- rebuild and execute the notebooks whose builder changed, so the
#                     committed ones show their outputs (ALL=1: every notebook)
#   make gpu-test  -- on a machine with an NVIDIA GPU: install CuPy, run the gpu tests (a skip fails)
#   make gpu-check -- on such a machine: the GPU check (tinylm/bench/gpu_check.py), under 6 minutes

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
DEMO_DIR ?= runs/shakespeare-char-mlp

.PHONY: install dev demo notebooks notebooks-execute test test-fast gpu-install gpu-test gpu-check bench clean

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

dev: $(VENV)/.dev-installed

demo: install
	@if [ -f $(DEMO_DIR)/ckpt.json ]; then \
	  echo "$(DEMO_DIR) already holds the trained demo; sampling from it (retrain with:" \
	       "tinylm train mlp --preset shakespeare-char-mlp --out-dir $(DEMO_DIR) --overwrite)"; \
	else $(BIN)/tinylm train mlp --preset shakespeare-char-mlp --out-dir $(DEMO_DIR); fi
	$(BIN)/tinylm generate $(DEMO_DIR) --prompt "ROMEO:" --max-new-tokens 400 --temperature 0.8 --seed 1

notebooks: install
	$(BIN)/jupyter lab notebooks/

notebooks-execute: dev
	$(PY) notebooks/build/execute.py $(if $(ALL),--all)

test: dev
	$(PY) -m pytest -q -n 2 --dist loadfile

test-fast: dev
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not notebook and not slow"

gpu-install: dev
	$(PY) -m pip install --quiet -r requirements-gpu.txt

gpu-test: gpu-install
	TINYLM_REQUIRE_GPU=1 $(PY) -m pytest -q -p no:xdist -m gpu

gpu-check: gpu-install
	$(PY) -m tinylm.bench.gpu_check

clean:
	rm -rf $(VENV) runs .pytest_cache
