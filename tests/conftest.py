"""Test-session setup shared by the tooling tests, the notebook tests and nbval.

- the repository root is importable, so `tools` is found however pytest is started;
- kernels started from this process (papermill here, nbval's) get the deterministic
  environment of `tools.environment`, the same one `make translate` executes with;
- every nbval cell of one notebook is pinned to one xdist worker (`--dist loadgroup`),
  since the cells share a kernel and must run in order: each gets an `xdist_group`
  mark, and a scheduler that also groups by notebook path works around
  pytest-dev/pytest-xdist#1386 (with pytest 9.2, xdist 3.8 silently ignores the mark);
- the `notebook` marker is registered (`make unit` deselects it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools import environment  # noqa: E402  (needs the path above)

environment.apply()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "notebook: executes a lesson notebook (slow; `make unit` skips these)"
    )


def notebook_of(nodeid: str) -> str | None:
    """`notebooks/en/02_x.ipynb` for an nbval cell's node id, else None."""
    path = nodeid.split("::", 1)[0]
    return path if path.endswith(".ipynb") else None


@pytest.hookimpl(tryfirst=True)  # before xdist turns xdist_group marks into node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        notebook = notebook_of(item.nodeid)
        if notebook is not None:
            item.add_marker(pytest.mark.xdist_group(notebook))


try:
    from xdist.scheduler import LoadGroupScheduling
except ImportError:  # pragma: no cover - xdist is in requirements.txt
    LoadGroupScheduling = None
else:

    class NotebookGroupScheduling(LoadGroupScheduling):
        """loadgroup, plus: the cells of one notebook are one unit of work."""

        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            if scope != nodeid:  # xdist did add the `@group` suffix
                return scope
            return notebook_of(nodeid) or nodeid


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    if LoadGroupScheduling is None or config.getvalue("dist") != "loadgroup":
        return None
    return NotebookGroupScheduling(config, log)


@pytest.fixture(autouse=True)
def torch_as_found() -> object:
    """A test that hooks torch leaves it unhooked, as it found it (`federated.hook`)."""
    from federated import hook

    was_hooked = hook.hooked()
    yield
    if not was_hooked:
        hook.unhook()
