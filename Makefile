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

test: $(VENV)/.installed-all
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -m "not cudasim"
	QT_QPA_PLATFORM=offscreen NUMBA_ENABLE_CUDASIM=1 $(BIN)/python -m pytest -q -m cudasim tests/cuda
	$(BIN)/lint-imports

bench: $(VENV)/.installed-all
	$(BIN)/lstm-explorer bench

clean:
	rm -rf $(VENV)
