# The two commands a learner or a teacher needs: `make lab` and `make test`.
# Every target first runs `make install`, which is quick when nothing changed.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LESSON ?= 02
LOCALE ?= en
# pytest-xdist workers: the machine has two cores.
JOBS   ?= 2

.PHONY: install lab test unit i18n-check translate run lint benchmark clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# Trusting the notebooks first lets JupyterLab show their saved dashboards at once.
lab: trust
	$(VENV)/bin/jupyter lab notebooks/

# Unit tests, the catalogue check, every lesson executed in both languages with its
# convergence checked, and nbval on the committed notebooks.
test: install lint i18n-check
	$(PY) -m pytest -n $(JOBS) --dist loadgroup tests --nbval notebooks/en notebooks/hi

unit: install
	$(PY) -m pytest -n $(JOBS) tests -m "not notebook"

lint: install
	$(VENV)/bin/ruff check federated tools tests benchmarks

i18n-check: install
	$(PY) -m tools i18n-check

translate: install
	$(PY) -m tools translate

run: install
	$(PY) -m tools run $(LESSON) $(LOCALE)

benchmark: install
	$(PY) benchmarks/training_step.py

clean:
	rm -rf build

# The browser test's needs, installed when missing: Debian's chromium and a Devanagari
# font (apt-get, as root), the widget renderer and RequireJS (npm, into build/vendor/).
# tests/test_browser.py does the same by itself, so `make test` needs no extra step.
.PHONY: browser screenshots trust
browser: install
	$(PY) -m tools browser

# Lessons 2 and 5 in both languages as headless Chromium shows them, exported from the
# committed notebooks: build/screenshots/<locale>/<lesson>.png and one PNG per widget.
screenshots: browser
	$(PY) -m tools screenshots

# JupyterLab shows a notebook's saved widgets (the dashboards) only once it trusts the
# notebook; trust is kept per user, outside the repository.
trust: install
	$(VENV)/bin/jupyter trust notebooks/en/*.ipynb notebooks/hi/*.ipynb
