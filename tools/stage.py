"""`make test`'s stages, each timed: `python -m tools.stage NAME -- COMMAND...`.

Runs the command, prints `== NAME: 12.3 s (ok)` and appends the line to
build/stages.txt; `python -m tools.stage --summary` prints every stage of the run and
starts a new list. The exit status is the command's, so make stops at a failing stage.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

LOG = Path("build") / "stages.txt"


def run(name: str, argv: list[str], log: Path = LOG) -> int:
    start = time.monotonic()
    status = subprocess.call(argv)
    line = f"{name}: {time.monotonic() - start:.1f} s ({'ok' if status == 0 else 'FAILED'})"
    print(f"== {line}", flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
    return status


def summary(log: Path = LOG) -> str:
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return "\n".join(["== stage times", *(f"   {line}" for line in lines)])


def main(args: list[str]) -> int:
    if args == ["--summary"]:
        print(summary())
        return 0
    if len(args) < 3 or args[1] != "--":
        print("usage: python -m tools.stage NAME -- COMMAND... | --summary", file=sys.stderr)
        return 2
    return run(args[0], args[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
