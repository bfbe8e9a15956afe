# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# every extra the test suite exercises: CUDA simulator + PTX, Dask sweeps, the PyTorch peer, interop
EXTRAS := test,cuda,sweep,bench,tensorboard,pandas

.PHONY: run test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-app: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-all: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(VENV)/.installed-app $@

run: $(VENV)/.installed-app
	$(BIN)/lstm-explorer

# The CUDA simulator tests need NUMBA_ENABLE_CUDASIM=1 before numba is imported: their own pytest
# process, run beside the main one (the simulator is one busy Python thread; the main suite leaves a core
# to spare most of the time), its report printed after the main one's. Both must pass. It keeps its temporary
# files apart (--basetemp) and writes no pytest cache, so neither session removes or rewrites the other's.
test: $(VENV)/.installed-all
	@QT_QPA_PLATFORM=offscreen NUMBA_ENABLE_CUDASIM=1 $(BIN)/python -m pytest -q -m cudasim tests/cuda \
		-p no:cacheprovider --basetemp=$(VENV)/cudasim-tmp > $(VENV)/cudasim.log 2>&1 & sim=$$!; \
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -m "not cudasim"; main=$$?; \
	wait $$sim; simrc=$$?; \
	echo "--- CUDA simulator tests (NUMBA_ENABLE_CUDASIM=1) ---"; cat $(VENV)/cudasim.log; \
	test $$main -eq 0 && test $$simrc -eq 0
	$(BIN)/lint-imports

bench: $(VENV)/.installed-all
	$(BIN)/lstm-explorer bench

clean:
	rm -rf $(VENV)
