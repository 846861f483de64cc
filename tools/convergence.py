"""Check that a lesson's training actually converged, from what its cells printed.

A code cell declares, in its metadata (on the template's fence line)::

    convergence={"pattern": "loss=([0-9.]+)", "final_below": 0.1, "ratio_below": 0.5}

`pattern` is a regex with one group, applied (findall) to the cell's stdout; the values
it captures are checked: `final_below` / `final_above` bound the last one, `ratio_below`
bounds last / first, `min_count` is how many values must be printed (default 1).
"""

from __future__ import annotations

import math
import re
from typing import Any

from nbformat import NotebookNode

from tools.outputs import stdout_of

KEY = "convergence"
_NUMBERS = ("final_below", "final_above", "ratio_below", "min_count")


def validate(spec: Any) -> list[str]:
    """Problems with a declaration itself; checked before anything runs."""
    if not isinstance(spec, dict):
        return [f"{KEY} must be a mapping, not {type(spec).__name__}"]
    problems = [f"unknown {KEY} key {key!r}" for key in spec if key not in ("pattern", *_NUMBERS)]
    pattern = spec.get("pattern")
    if not isinstance(pattern, str):
        problems.append(f"{KEY} needs a 'pattern' string")
    else:
        try:
            groups = re.compile(pattern).groups
        except re.error as error:
            problems.append(f"{KEY} pattern {pattern!r} is not a regex: {error}")
        else:
            if groups != 1:
                problems.append(f"{KEY} pattern {pattern!r} must have exactly one group")
    for key in _NUMBERS:
        value = spec.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            problems.append(f"{KEY} {key!r} must be a number")
    return problems


def values(spec: dict, text: str) -> list[float]:
    """The numbers `pattern` captures in `text` (raises ValueError on a non-number)."""
    return [float(match) for match in re.findall(spec["pattern"], text)]


def check_values(spec: dict, found: list[float]) -> list[str]:
    """What is wrong with the captured values; empty when they show convergence."""
    min_count = int(spec.get("min_count", 1))
    if len(found) < max(min_count, 1):
        return [f"printed {len(found)} values matching {spec['pattern']!r}, need {min_count}"]
    first, last = found[0], found[-1]
    problems = []
    if math.isnan(last):
        problems.append("final value is nan")
    if "final_below" in spec and not last < spec["final_below"]:
        problems.append(f"final value {last:g} is not below {spec['final_below']:g}")
    if "final_above" in spec and not last > spec["final_above"]:
        problems.append(f"final value {last:g} is not above {spec['final_above']:g}")
    if "ratio_below" in spec:
        if first == 0:
            problems.append("first value is 0, so last/first is undefined")
        elif not last / first < spec["ratio_below"]:
            problems.append(
                f"last/first = {last:g}/{first:g} = {last / first:.3g}"
                f" is not below {spec['ratio_below']:g}"
            )
    return problems


def check(notebook: NotebookNode) -> list[str]:
    """Failure messages for every cell whose declared convergence is not met."""
    failures: list[str] = []
    for index, cell in enumerate(notebook.cells):
        spec = cell.get("metadata", {}).get(KEY)
        if cell.cell_type != "code" or spec is None:
            continue
        label = f"cell {index} ({_first_line(cell.source)})"
        problems = validate(spec)
        if not problems:
            try:
                problems = check_values(spec, values(spec, stdout_of(cell)))
            except ValueError as error:
                problems = [f"pattern captured a non-number: {error}"]
        failures.extend(f"{label}: {problem}" for problem in problems)
    return failures


def _first_line(source: str) -> str:
    lines = [line for line in source.split("\n") if line.strip()]
    return lines[0][:50] if lines else "empty"
