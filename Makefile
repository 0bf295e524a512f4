# Two commands a user needs: `make demo` and `make test`. Both set up the environment first
# (tools/setup_env.sh is idempotent: a no-op once the stack is installed).
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
export MMSAM_VENV := $(VENV)

.PHONY: env demo test clean-demo

env:
	bash tools/setup_env.sh

demo: env
	$(PY) tools/demo.py --work-dir work_dirs/demo

test: env
	$(PY) -m pytest tests -q -p no:cacheprovider

clean-demo:
	rm -rf work_dirs/demo
