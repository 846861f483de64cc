"""The kernel environment that makes lesson outputs repeatable.

translate, run, the notebook tests and nbval (through tests/conftest.py) all start their
kernels with these variables, so a committed output is what the next run prints too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

KERNEL_ENV: dict[str, str] = {
    # set and dict iteration order, hence printed collections, stay the same
    "PYTHONHASHSEED": "0",
    # one thread: float reductions are summed in the same order every time
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    # CPU only, even on a machine with a GPU: its kernels round differently
    "CUDA_VISIBLE_DEVICES": "",
    # progress bars print timings, which never match
    "TQDM_DISABLE": "1",
    # quiets debugpy's frozen-modules warning on the kernel's stderr
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
}
#: removed for the kernels: the widgets take their language from the kernel's folder
#: (notebooks/<locale>/), and a FEDERATED_LANG=hi set for one's own JupyterLab must not
#: put Hindi labels into the English notebooks
UNSET: tuple[str, ...] = ("FEDERATED_LANG",)


def apply() -> None:
    """Set the variables for every kernel this process starts from now on."""
    os.environ.update(KERNEL_ENV)
    for name in UNSET:
        os.environ.pop(name, None)


@contextmanager
def kernel_environment() -> Iterator[None]:
    """Set the variables while kernels start, then put the old values back."""
    saved = {name: os.environ.get(name) for name in (*KERNEL_ENV, *UNSET)}
    apply()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
