"""Check that a lesson's training actually converged, from what its cells printed.

A code cell declares, in its metadata (on the template's fence line)::

    convergence={"pattern": "loss=([0-9.]+)", "final_below": 0.1, "ratio_below": 0.5}

`pattern` is a regex with one group, applied (findall) to the cell's stdout; the values
it captures are checked: `final_below` / `final_above` bound the last one, `ratio_below`
bounds last / first, `min_count` is how many values must be printed (default 1).

The pattern is written against the English output. When it reads a number out of a
printed text (`print(f"round {r} loss {value:.4f}")` and `loss ([0-9.]+)`), a translated
notebook gets a pattern made from that text's translation instead (`localize`): the same
field, the same group, the translated words around it. So a translator never edits a
regex, and a check that matches nothing fails instead of passing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from nbformat import NotebookNode

from tools import printed
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


def followed(pattern: str, source: str, earlier: Sequence[str] = ()) -> list[tuple[str, str]]:
    """(printed text, field) pairs whose printed value `pattern` captures.

    Each f-string printed by the cell, or if none matches by the lesson's `earlier` code
    cells (a function defined there prints when this cell calls it), is rendered with
    `1` for every field; a match whose group starts where a field does names that field.
    """
    found = _followed(re.compile(pattern), [source])
    return found or _followed(re.compile(pattern), earlier)


def _followed(regex: re.Pattern[str], sources: Sequence[str]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for source in sources:
        for text in printed.find_printed(source):
            if not text.is_fstring:
                continue
            sample, starts = "", {}
            for piece, is_field in printed.pieces(text.text):
                if is_field:
                    starts[len(sample)] = piece
                    sample += "1"
                else:
                    sample += piece.replace("{{", "{").replace("}}", "}")
            for match in regex.finditer(sample):
                field = starts.get(match.start(1))
                if field is not None and (text.text, field) not in found:
                    found.append((text.text, field))
    return found


def source_problems(spec: Any, source: str, earlier: Sequence[str] = ()) -> list[str]:
    """A pattern that follows printed text must follow one field of one text."""
    if validate(spec):
        return []
    found = followed(spec["pattern"], source, earlier)
    if len(found) > 1:
        shown = "; ".join(f"{field} in {text!r}" for text, field in found)
        return [f"{KEY} pattern {spec['pattern']!r} reads more than one printed text: {shown}"]
    return []


def localize(
    spec: Any,
    source: str,
    translate: Callable[[str], str | None],
    earlier: Sequence[str] = (),
) -> Any:
    """The declaration for a notebook whose printed texts are `translate`d: the pattern
    made from the translation of the one printed text it reads (else unchanged)."""
    if validate(spec):
        return spec
    found = followed(spec["pattern"], source, earlier)
    if len(found) != 1:
        return spec
    text, field = found[0]
    translation = translate(text)
    if translation is None or translation == text or field not in printed.placeholders(translation):
        return spec
    group = _group(spec["pattern"]) or printed.NUMBER
    return {**spec, "pattern": printed.output_pattern(translation, field, group)}


def _group(pattern: str) -> str | None:
    """The regex inside the pattern's capturing group, as written."""
    depth, start, index, in_class = 0, None, 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            if pattern.startswith(("[]", "[^]"), index):
                index += 2 if pattern.startswith("[]", index) else 3
                continue
        elif char == "(":
            if start is None and not pattern.startswith("(?", index):
                start, depth = index + 1, 0
            depth += 1
        elif char == ")":
            depth -= 1
            if start is not None and depth == 0:
                return pattern[start:index]
        index += 1
    return None


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
