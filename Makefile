# livetopic: `make demo` and `make test` do all set-up from a clean clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.livetopic-installed
# cpu (default): torch==2.13.0, a CPU build. gpu: keep the CUDA torch you installed yourself (docs/INSTALL.md).
TORCH ?= cpu
# where the CPU build comes from (requirements/cpu_torch.py falls back to pip's own configuration without it)
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: install demo test test-quick check-deploy lint typecheck check bench clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt requirements/cpu.txt requirements/cpu_torch.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
ifeq ($(TORCH),cpu)
	$(PY) requirements/cpu_torch.py --index $(TORCH_INDEX)
endif
	$(PY) -m pip install -q -c requirements/constraints.txt -e '.[train,report,dev,scrape,deploy]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/livetopic demo

test: $(STAMP)
	$(VENV)/bin/ruff check worker trainer devtools tests
	$(VENV)/bin/ruff format --check worker trainer devtools tests
	$(VENV)/bin/mypy
	$(PY) -m pytest -q -p no:cacheprovider

# the tests without the slow ones (processes, training, browsers): a quick check while editing
test-quick: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow"

# deploy/ checked by the real tools (kubectl kustomize, promtool, yamllint) and against the worker's metrics
# (devtools/deploycheck: run from the checkout, never installed);
# .ci/run installs kubectl and promtool where they are missing.
check-deploy: $(STAMP)
	$(PY) -m devtools.deploycheck --deploy-dir deploy

lint: $(STAMP)
	$(VENV)/bin/ruff check worker trainer devtools tests
	$(VENV)/bin/ruff format --check worker trainer devtools tests

typecheck: $(STAMP)
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(VENV)/bin/livetopic bench --preset bert-base-chinese --texts ../shared/data/tvl19_chat --n 2000

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
