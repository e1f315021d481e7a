# Two commands do all the set-up on a fresh machine:
#   make demo   pretrain + finetune LCM on the bundled simulated cohort, write runs/demo/report.md
#   make test   run the test suite (fast tests; `make test-all` adds the slow ones)
VENV ?= .venv
PY := $(VENV)/bin/python
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1

.PHONY: setup test test-all demo bench lint clean

# torch is installed first from the pinned CPU wheel: a bare `torch` requirement could pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

setup: $(VENV)/.installed

test: setup
	$(OFFLINE) $(PY) -m pytest -q -n 2 tests

test-all: setup
	$(OFFLINE) $(PY) -m pytest -q -n 2 -m "" tests

demo: setup
	$(OFFLINE) $(VENV)/bin/lcm-hf demo --output-dir runs/demo

bench: setup
	$(OFFLINE) $(PY) benchmarks/bench_model.py
	$(OFFLINE) $(PY) benchmarks/bench_connectivity.py
	$(OFFLINE) $(PY) benchmarks/bench_compile.py

lint: setup
	$(VENV)/bin/ruff check lcm_hf processing training modeling benchmarks tests

clean:
	rm -rf $(VENV) runs .pytest_cache
