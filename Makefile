# graphnet: the two commands are `make run` and `make test` (see README).
#
# Everything runs in a virtual environment, .venv, made with Debian's own
# /usr/bin/python3 (Debian's python3 refuses a system-wide pip install, PEP 668)
# and reused when present. The Cython extensions are built in place and only
# rebuilt when their .pyx/.pxd changed: a second `make test` starts pytest at
# once.
SYSTEM_PYTHON ?= /usr/bin/python3
VENV ?= .venv
PYTHON = $(VENV)/bin/python
PIP = $(PYTHON) -m pip --disable-pip-version-check
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# Builds share generated .c files: serialize them.
LOCK = flock /tmp/graphnet-build.lock

.PHONY: install build debug run test bench fuzz clean distclean

# The venv and the Python dependencies, once (again when pyproject.toml changes).
$(VENV)/.installed: pyproject.toml setup.py
	@test -x $(PYTHON) || { echo "creating virtual environment $(VENV) with $(SYSTEM_PYTHON)"; \
	    $(SYSTEM_PYTHON) -m venv $(VENV) || { echo "python3 -m venv failed: apt-get install python3-venv"; exit 1; }; }
	$(PIP) install -q --upgrade pip setuptools wheel 'cython>=3.0'
	GRAPHNET_NO_EXT=1 $(PIP) install -q --no-build-isolation -e '.[test]' --config-settings editable_mode=compat
	@touch $@

install: $(VENV)/.installed build   ## the venv, graphnet (editable) and its dependencies

build: $(VENV)/.installed           ## (re)build the changed Cython extensions in place, in parallel
	@$(LOCK) $(PYTHON) setup.py build_ext --inplace -j $(JOBS) 2>&1 \
	    | grep -E --line-buffered '^(Compiling|\[|building|error|Error)|rror:' || true
	@$(PYTHON) -c 'import graphnet.vlib.main' || { echo "build failed: run '$(PYTHON) setup.py build_ext --inplace' to see why"; exit 1; }

debug: $(VENV)/.installed           ## debug build: bounds checks, line tracing, cython -a HTML next to each .pyx
	GRAPHNET_DEBUG=1 $(LOCK) $(PYTHON) setup.py -q build_ext --inplace --force -j $(JOBS)

run: install                        ## set up and run the built-in default configuration (RUN_ARGS="--seconds 5" to stop by itself)
	$(VENV)/bin/graphnet run $(RUN_ARGS)

test: install                       ## set up and run the test suite
	$(PYTHON) -m pytest -q

bench: install                      ## run every `graphnet bench` scenario (JSON lines only on stdout; root for the device ones)
	$(VENV)/bin/graphnet bench all --json

# The long fuzz profile: 1,000,000 frames per family (FUZZ_ARGS to change,
# e.g. FUZZ_ARGS='udp --frames 5000000 --seed 7'), then the Hypothesis
# properties with 25x their examples (both run; either failing fails the
# target). `make test` runs the short profile.
FUZZ_ARGS ?= all --frames 1000000
fuzz: install                       ## 1 M fuzz frames per node family, Hypothesis properties x25
	@$(PYTHON) -m graphnet fuzz $(FUZZ_ARGS); status=$$?; \
	GRAPHNET_HYPOTHESIS=fuzz $(PYTHON) -m pytest -q tests/nodes/test_ip4_fragments.py tests/nodes/test_ethernet_ip4.py \
	    tests/nodes/test_ip4_host.py && exit $$status

clean:
	rm -rf build *.egg-info
	find graphnet -name '*.so' -delete -o -name '*.c' -delete -o -name '*.html' -delete

distclean: clean
	rm -rf $(VENV)
