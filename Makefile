# Two commands do everything on a fresh machine with Python 3.10+ and make:
#   make demo   set up .venv and build the demo batch into output/demo/
#   make test   set up .venv, lint (ruff, mypy), then run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test lint install bench clean catalogues

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,postgres,lint]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/letterpress demo

lint: $(STAMP)
	$(BIN)/ruff check letterpress tests benchmarks
	$(BIN)/mypy letterpress

test: lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/letters.py
	$(BIN)/python benchmarks/slips.py

# Extract the messages of the code and pages into letterpress/locale/*/LC_MESSAGES/letterpress.po
# (new ones come in empty, gone ones leave), then list what still needs a translation.
catalogues: $(STAMP)
	$(BIN)/python -m letterpress.catalogues update
	$(BIN)/python -m letterpress.catalogues check

clean:
	rm -rf $(VENV) output/demo
