# graphnet: the two commands are `make run` and `make test` (see README).
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
# Builds share generated .c files: serialize them.
LOCK = flock /tmp/graphnet-build.lock

.PHONY: install build debug run test bench clean

install:            ## install graphnet and its Python dependencies (editable)
	$(PIP) install -q -e '.[test]'

build:              ## rebuild the Cython extensions in place
	$(LOCK) $(PYTHON) setup.py -q build_ext --inplace

debug:              ## debug build: bounds checks, line tracing, cython -a HTML next to each .pyx
	GRAPHNET_DEBUG=1 $(LOCK) $(PYTHON) setup.py -q build_ext --inplace --force

run: install        ## set up and run the built-in default configuration
	graphnet run

test: install       ## set up and run the test suite
	$(PYTHON) -m pytest -q

bench: install      ## run the benchmarks (JSON lines) and the perf suite
	graphnet bench all --json

clean:
	rm -rf build *.egg-info
	find graphnet -name '*.so' -delete -o -name '*.c' -delete -o -name '*.html' -delete
