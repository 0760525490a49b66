# The two set-up commands on a fresh machine are `make reproduce` and `make test`:
# each creates .venv (if missing) and installs paperlib with its pinned dependencies into it.
PY ?= python3.11
VENV ?= .venv
PYTHON := $(VENV)/bin/python
PROFILE ?= cpu
ONLY ?=
JOBS ?= 1
STAMP := $(VENV)/.installed-stamp

.PHONY: venv test reproduce lab bench gpu site clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PYTHON) || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -e ".[dev]"
	$(PYTHON) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

test: venv
	$(PYTHON) -m pytest -q -n 2 --durations=15

reproduce: venv
	$(PYTHON) -m paperlib reproduce --profile $(PROFILE) --jobs $(JOBS) $(if $(ONLY),--only $(ONLY),)
	$(PYTHON) -m paperlib report

# the static companion site from what is committed (executes nothing): build/site/index.html
site: venv
	$(PYTHON) -m paperlib site

lab: venv
	$(PYTHON) -m paperlib lab

# every GPU number in one call of at most 9 minutes (paperlib/gpu_session.py); exits 0 without CUDA
gpu: venv
	$(PYTHON) -m paperlib gpu $(if $(DRY),--dry-run,)
	$(PYTHON) -m paperlib report

bench: venv
	@for f in benchmarks/*.py; do echo "== $$f"; $(PYTHON) $$f || exit 1; done

clean:
	rm -rf build .pytest_cache
