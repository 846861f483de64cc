"""The kernel environment that makes lesson outputs repeatable.

These variables are written into the project's kernels (tools/kernel.py), so every
kernel that runs a lesson has them, whoever starts it: JupyterLab, papermill
(`make translate`, the notebook tests) or nbval. A learner's run in JupyterLab therefore
prints what the committed notebook shows.
"""

from __future__ import annotations

import os

KERNEL_ENV: dict[str, str] = {
    # set and dict iteration order, hence printed collections, stay the same
    "PYTHONHASHSEED": "0",
    # one thread: float reductions are summed in the same order every time (PyTorch's
    # intra-op pool, OpenMP, MKL and OpenBLAS each read one of these at start)
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    # the same vector instructions on every x86-64 machine with AVX2: PyTorch's own kernels,
    # oneDNN's (convolutions) and MKL's (matrix products) would each take the widest the CPU
    # has, and wider vectors sum in another order. This narrows, but cannot close, the gap
    # between processors (caches and vendors still differ), so the one chaotic run, lesson 5's
    # skewed split, is not compared digit by digit by nbval (README, Tests)
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "AVX2",
    # CPU only, even on a machine with a GPU: its kernels round differently
    "CUDA_VISIBLE_DEVICES": "",
    # progress bars print timings, which never match
    "TQDM_DISABLE": "1",
    # quiets debugpy's frozen-modules warning on the kernel's stderr
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
}
#: the variable that names the widgets' language; each project kernel sets it
LANGUAGE_VARIABLE = "FEDERATED_LANG"


def for_locale(locale: str) -> dict[str, str]:
    """Everything a lesson kernel of `locale` runs with."""
    return {**KERNEL_ENV, LANGUAGE_VARIABLE: locale}


def apply_without_language() -> None:
    """Set the variables (not the language) in this process, for the kernels it starts
    from a kernelspec other than the project's (a notebook from before the project
    kernels names `python3`), and for the tests that run in it."""
    os.environ.update(KERNEL_ENV)
    clear_language()


def clear_language() -> None:
    """Forget a `FEDERATED_LANG` of the shell, so tests of this process are not Hindi by chance."""
    os.environ.pop(LANGUAGE_VARIABLE, None)
