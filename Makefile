# The two commands a learner or a teacher needs: `make lab` and `make test`.
# Every target first runs `make install`, which is quick when nothing changed.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LESSON ?= 02
LOCALE ?= en
# Extra JupyterLab arguments, e.g. `make lab LAB_ARGS="--ip=0.0.0.0 --port=8899"`.
LAB_ARGS ?=
# pytest-xdist workers: one per core this process may use.
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
# Debian packages the tests need besides Python: the browser test's Chromium and a
# Devanagari font, and GNU gettext's msgfmt for the catalogue check.
SYSTEM_PACKAGES := chromium fonts-lohit-deva gettext
STAGE  := $(PY) -m tools.stage

.PHONY: install lab test unit lint typecheck format po-check i18n-check translate run \
        benchmark clean system-packages browser screenshots trust wheel

install: $(STAMP)

# The project's kernels and JupyterLab settings go into .venv too (tools/lab.py).
$(STAMP): requirements.txt pyproject.toml tools/kernel.py tools/environment.py tools/lab.py \
          tools/paths.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(PY) -m tools setup-lab
	touch $@

# Installs the missing ones with apt-get (as root, or through sudo); does nothing when
# all are there. `.ci/run` calls it; tests never install anything themselves.
system-packages:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
	  | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  echo "installing $$missing"; \
	  $$sudo apt-get update -q && $$sudo apt-get install -y -q --no-install-recommends $$missing; \
	fi

# JupyterLab on notebooks/, as root too; prints where to point a browser when there is none.
lab: trust
	$(PY) -m tools lab --lab-args="$(LAB_ARGS)"

# Every stage runs even if an earlier one failed, and the times are printed at the end.
# pytest runs the unit tests, papermill executing every lesson in both languages
# (tests/test_notebooks.py) and nbval on the committed notebooks side by side:
# `--dist loadscope` hands each worker a whole module, test class or notebook file at a
# time, so a notebook's cells run in order on one worker, and each lesson's papermill
# test (a class of its own) can go to any worker. `--no-loadscope-reorder` keeps the
# order tests/conftest.py sets, longest units first (xdist would otherwise start the units
# with the most tests first, and the one-test lesson classes would end the run alone).
test: install
	@rm -f build/stages.txt; status=0; \
	$(STAGE) lint -- $(VENV)/bin/ruff check federated tools tests benchmarks || status=1; \
	$(STAGE) format -- $(VENV)/bin/ruff format --check --output-format concise \
	  federated tools tests benchmarks \
	  || status=1; \
	$(STAGE) typecheck -- $(PY) -m mypy || status=1; \
	$(STAGE) i18n-check -- $(PY) -m tools i18n-check || status=1; \
	$(STAGE) pytest -- $(PY) -m pytest -n $(JOBS) --dist loadscope --no-loadscope-reorder \
	  --durations=12 tests \
	  --nbval notebooks/en notebooks/hi || status=1; \
	$(STAGE) --summary; exit $$status

unit: install
	$(PY) -m pytest -n $(JOBS) --dist loadscope --no-loadscope-reorder tests -m "not notebook"

lint: install
	$(VENV)/bin/ruff check federated tools tests benchmarks

typecheck: install
	$(PY) -m mypy

# One formatter for the repository: `make format` rewrites, `make test` checks.
format: install
	$(VENV)/bin/ruff format federated tools tests benchmarks

# `msgfmt --check` on every catalogue, as GNU gettext's tools and editors read them
# (in `make test`, tests/test_tools.py does the same).
po-check: install
	$(PY) -m tools po-check

i18n-check: install
	$(PY) -m tools i18n-check

translate: install
	$(PY) -m tools translate

run: install
	$(PY) -m tools run $(LESSON) $(LOCALE)

benchmark: install
	$(PY) benchmarks/training_step.py
	$(PY) benchmarks/privacy.py

# The distribution as `pip install` gets it: build/dist/federated_classroom-*.whl.
wheel: install
	$(PY) -m pip wheel -q --no-deps --no-build-isolation -w build/dist .

clean:
	rm -rf build

# The browser test's needs: Debian's chromium and a Devanagari font (system-packages),
# the widget renderer and RequireJS (npm, into build/vendor/).
browser: install system-packages
	$(PY) -m tools browser

# Lessons 2 and 5 in both languages as headless Chromium shows them, exported from the
# committed notebooks: build/screenshots/<locale>/<lesson>.png and one PNG per widget.
screenshots: browser
	$(PY) -m tools screenshots

# JupyterLab shows a notebook's saved widgets (the dashboards) only once it trusts the
# notebook; trust is kept per user, outside the repository.
trust: install
	$(VENV)/bin/jupyter trust notebooks/en/*.ipynb notebooks/hi/*.ipynb
