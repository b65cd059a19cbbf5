# The two commands a reader needs: `make book` builds the book, `make test` runs every test.
# Each creates the Python environment in .venv on first use and refreshes it when the
# requirements change.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JB_FLAGS := -W -n --keep-going

.PHONY: book test lint notebooks figures benchmarks clean student pdf

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "lossgrad needs Python 3.11 or newer (set PYTHON=python3.11)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

## Build the HTML book (notebooks executed through the jupyter-cache), warnings as errors.
book: $(STAMP)
	$(BIN)/jupyter-book build . $(JB_FLAGS)
	@echo "Open $(CURDIR)/_build/html/index.html"

## Build the student edition (every exercise, no solution) into _build/student/html, the same
## way and with the same checks as `book`; it reuses the notebooks executed for `book`.
student: $(STAMP)
	$(BIN)/python -m lossgrad.sphinx_student --output _build/student/html --cache _build/.jupyter_cache

## Build the whole book as one PDF through LaTeX (xelatex; TeX Live, see the README):
## _build/latex/lossgrad.pdf. The next HTML build copies it into the site and offers it for
## download on every page.
pdf: $(STAMP)
	LATEXOPTS="-interaction=nonstopmode -halt-on-error -file-line-error" \
		$(BIN)/jupyter-book build . $(JB_FLAGS) --builder pdflatex
	@echo "PDF: $(CURDIR)/_build/latex/lossgrad.pdf"

## Lint, build the PDF (where TeX Live is installed, and always under CI=true) and then the
## book, so that the site links the PDF; then run unit tests, doctests, nbval, the PDF checks
## and the browser checks.
test: $(STAMP)
	$(BIN)/ruff check src tests book
	@if command -v xelatex >/dev/null 2>&1 || [ "$$CI" = true ]; then $(MAKE) pdf; \
	else echo "TeX Live (xelatex) not found: no PDF is built and its tests are skipped"; fi
	$(BIN)/jupyter-book build . $(JB_FLAGS)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests book

## Re-execute every notebook top to bottom in a fresh kernel and save it with its outputs.
notebooks: $(STAMP)
	$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.record_timing=False book/*.ipynb

## Measure accuracy (ULPs against mpmath) and speed (ratios to the naive formulas); the last
## writes the table that chapter "Cross-entropy at vocabulary scale" plots.
benchmarks: $(STAMP)
	$(BIN)/python benchmarks/accuracy.py
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/vocabulary.py --csv book/data/vocabulary-benchmark.csv

## Redraw the figure shown in the README.
figures: $(STAMP)
	$(BIN)/python -c 'from lossgrad.figures import bce_figure; bce_figure().savefig("book/images/bce-loss-gradient.png", metadata={"Software": None})'

clean:
	rm -rf _build
