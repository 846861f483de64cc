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

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools import environment, kernel  # noqa: E402  (needs the path above)

environment.apply_without_language()
kernel.install()


#: Seconds one execution of a lesson took (nbval, on 2 busy cores): the order of the
#: lessons' units, not a limit. tests/test_notebooks.py executes a lesson twice (both
#: languages), nbval once per notebook file. Refresh with `--durations` when it drifts.
LESSON_SECONDS = {
    "11": 290, "07": 65, "05": 64, "08": 50, "10": 43, "09": 33,
    "02": 30, "03": 18, "04": 18, "06": 18, "01": 10,
}  # fmt: skip
#: The same for the modules that start servers, browsers, JupyterLab or a virtualenv;
#: every other module is short and fills the workers' tails in collection order.
MODULE_SECONDS = {
    "tests/test_flower.py": 80,
    "tests/test_lab.py": 150,
    "tests/test_remote.py": 150,
    "tests/test_server_security.py": 130,
    "tests/test_browser.py": 80,
    "tests/test_package.py": 80,
    "tests/test_tools.py": 60,
    "tests/test_comparison.py": 50,
    "tests/test_server_peers.py": 35,
    "tests/test_plan.py": 30,
}
LESSON_OF = re.compile(r"^tests/test_notebooks\.py::TestLesson(\d+)|^notebooks/\w+/(\d+)_")


def _cost(item: pytest.Item) -> int:
    """Roughly how long the unit of work holding `item` takes, in seconds."""
    lesson = LESSON_OF.match(item.nodeid)
    if lesson:
        seconds = LESSON_SECONDS.get(lesson[1] or lesson[2], 30)
        return 2 * seconds if lesson[1] else seconds
    return MODULE_SECONDS.get(item.nodeid.split("::", 1)[0], 0)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest units first; a stable sort, so a unit's tests (a notebook's cells) keep
    their order, and every xdist worker computes the same order from the same items."""
    items.sort(key=lambda item: -_cost(item))


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
