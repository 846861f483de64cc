"""Test-session setup shared by the tooling tests, the notebook tests and nbval.

- the repository root is importable, so `tools` is found however pytest is started;
- the project's kernels are installed (they carry the kernel environment, so papermill
  here and nbval start the same kernels as `make translate` and JupyterLab);
- the kernel environment is set here too (one thread, ...), for a notebook that names
  another kernel, and a `FEDERATED_LANG` of the shell is dropped, so no test is Hindi
  by accident;
- the `notebook` marker is registered (`make unit` deselects it).

Every nbval cell of one notebook runs on one xdist worker, in order, because `make test`
uses `--dist loadscope`, whose unit of work is a module, a test class or, for nbval, a
notebook file (tests/test_notebooks.py has one class per lesson, so lessons spread too).

Long units go first (`pytest_collection_modifyitems` below, with `make test`'s
`--no-loadscope-reorder`, which keeps xdist from re-sorting units by their number of
tests): otherwise the one-test lesson classes, the longest units, are handed out last
and the run ends with one worker executing a lesson while the other waits.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools import environment, kernel  # noqa: E402  (needs the path above)

environment.apply_without_language()
kernel.install()


#: Units of work, longest first (measured with `--durations`): the papermill lessons
#: (two executions each), then the modules that start servers, browsers or virtualenvs,
#: then nbval's notebooks. Every other unit follows in collection order; those are short
#: and fill the workers' tails.
LONGEST_FIRST = (
    "tests/test_notebooks.py",
    "tests/test_flower.py",
    "tests/test_lab.py",
    "tests/test_remote.py",
    "tests/test_server_security.py",
    "tests/test_browser.py",
    "tests/test_server_peers.py",
    "tests/test_package.py",
    "notebooks/",
)


def _rank(item: pytest.Item) -> int:
    nodeid = item.nodeid
    return next(
        (rank for rank, prefix in enumerate(LONGEST_FIRST) if nodeid.startswith(prefix)),
        len(LONGEST_FIRST),
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest units first; a stable sort, so a unit's tests (a notebook's cells) keep
    their order, and every xdist worker computes the same order from the same items."""
    items.sort(key=_rank)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "notebook: executes a lesson notebook (slow; `make unit` skips these)"
    )


@pytest.fixture(autouse=True)
def torch_as_found() -> object:
    """A test that hooks torch leaves it unhooked, as it found it (`federated.hook`)."""
    from federated import hook

    was_hooked = hook.hooked()
    yield
    if not was_hooked:
        hook.unhook()
