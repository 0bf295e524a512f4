# Two commands a user needs: `make demo` and `make test`. Both set up the environment first
# (tools/setup_env.sh is idempotent: a no-op once the stack is installed).
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
export MMSAM_VENV := $(VENV)

.PHONY: env demo test test-fast clean-demo

env:
	bash tools/setup_env.sh

demo: env
	$(PY) tools/demo.py --work-dir work_dirs/demo

# pytest-xdist workers (one thread each); PYTEST_WORKERS=0 runs the tests in one process
PYTEST_WORKERS ?= 2

# everything (what CI runs)
test: env
	$(PY) -m pytest tests -q -p no:cacheprovider -n $(PYTEST_WORKERS)

# the inner loop: skips the end-to-end tool/subprocess runs (marker `e2e`)
test-fast: env
	$(PY) -m pytest tests -q -p no:cacheprovider -n $(PYTEST_WORKERS) -m "not e2e"

clean-demo:
	rm -rf work_dirs/demo
