# The course's entry points. The README names `make lab` and `make test`; the rest serve them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Tools that nbgrader and papermill start by name (alembic, jupyter) come from the venv.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
ASSIGNMENTS := $(notdir $(wildcard solutions/*))
JOBS ?= 2

.PHONY: help setup lab test lint exercises colab bench grade release feedback export \
	constraints checkpoints clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# (Re)create the virtual environment when it is missing or older than the dependency files.
# `.[dev]` = the runtime set + `lab` (JupyterLab, ipykernel, nbgrader) + the test tools.
$(STAMP): pyproject.toml constraints.txt
	@echo ">> installing the course into $(VENV) (first time: ~4 min, ~6 GB with torch)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)  ## create or refresh .venv (runtime + the lab and dev extras)

# JupyterLab, ipykernel and nbgrader (the Validate button) come from the `lab` extra.
lab: setup  ## start JupyterLab on lectures/ (PORT=8888 by default; next free port if busy)
	@$(PY) tools/lab.py

test: setup  ## the whole suite: unit tests, every notebook, every assignment, lint
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup  ## ruff on code and notebooks
	$(VENV)/bin/ruff check .

exercises: setup  ## regenerate exercises/ from solutions/ with nbgrader
	$(PY) -m tools.grading generate $(ASSIGNMENTS)

# The badge and install cell of every notebook, from [tool.course] in pyproject.toml.
# NOTEBOOKS narrows it (e.g. NOTEBOOKS=lectures/05_context_before_fcn.ipynb).
colab: setup  ## rewrite Colab badges + install cells from [tool.course], regenerate exercises/
	$(PY) -m tools.colab $(NOTEBOOKS)
	$(PY) -m tools.grading generate $(ASSIGNMENTS)

bench: setup  ## print the performance report (notebook times come from the last `make test`)
	$(PY) -m bench

# Each submission runs in a bubblewrap sandbox; ASSIGNMENTS=, JOBS= (at once), FORCE=1
# (regrade unchanged submissions), UNSANDBOXED=1 (no sandbox: student code gets your rights).
grade: setup  ## autograde grading/submitted/<student>/<assignment>/, then a table per student
	@mkdir -p grading/submitted
	$(PY) -m tools.grading autograde --jobs $(JOBS) $(if $(FORCE),--force) \
	  $(if $(UNSANDBOXED),--unsandboxed) $(ASSIGNMENTS)

feedback: setup  ## HTML feedback for every graded submission into grading/feedback/
	$(PY) -m tools.grading feedback $(ASSIGNMENTS)

export: setup  ## the gradebook's scores as grading/grades.csv
	$(PY) -m tools.grading export

release: exercises  ## the student release is exercises/: commit it, or zip it
	@mkdir -p build && rm -f build/exercises.zip && zip -qr build/exercises.zip exercises \
	  && echo ">> build/exercises.zip"

checkpoints: setup  ## retrain every shipped checkpoint from its recipe (hours on a CPU: see MANIFEST.json)
	$(PY) -m course_lib.zoo train --all

constraints: setup  ## re-pin constraints.txt from the current .venv
	@{ head -2 constraints.txt; $(VENV)/bin/pip freeze --exclude-editable \
	  | grep -vi '^course.lib'; } > constraints.new && mv constraints.new constraints.txt

clean:  ## remove build products (keeps .venv and grading/: submissions and the gradebook)
	rm -rf build .pytest_cache .ruff_cache
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +
