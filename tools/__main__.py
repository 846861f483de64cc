"""Command line: `python -m tools {i18n-check,translate,run}` (see tools/README.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from babel.messages.pofile import PoFileError

from tools.paths import DEFAULT_ROOT, LOCALES, Project, UnknownName


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--root",
        type=Path,
        default=argparse.SUPPRESS,
        help="repository to work on (default: the one tools/ is in)",
    )
    main = argparse.ArgumentParser(prog="python -m tools", description=__doc__, parents=[common])
    commands = main.add_subparsers(dest="command", required=True)

    commands.add_parser(
        "i18n-check",
        parents=[common],
        help="fail on missing or fuzzy translations, broken markdown, glossary drift"
        " and stale notebooks (fast, runs nothing)",
    )
    translate = commands.add_parser(
        "translate",
        parents=[common],
        help="merge catalogues, build and execute every notebook, print the status",
    )
    translate.add_argument(
        "--no-execute",
        action="store_true",
        help="build only (outputs are kept when the code did not change)",
    )
    translate.add_argument("--lesson", help="only this lesson: 02 or its full slug")

    run = commands.add_parser(
        "run", parents=[common], help="execute one notebook headless and print its output"
    )
    run.add_argument("lesson", help="02 or a full slug such as 02_intro_federated_learning")
    run.add_argument("locale", choices=LOCALES)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    project = Project(getattr(args, "root", DEFAULT_ROOT).resolve())
    try:
        if args.command == "i18n-check":
            from tools.check import check_project

            report = check_project(project)
            for problem in report.problems:
                print(problem)
            print(report.summary())
            return 0 if report.ok else 1
        if args.command == "translate":
            from tools.translate import translate

            lessons = [project.find_lesson(args.lesson)] if args.lesson else project.lessons()
            return translate(project, lessons, execute=not args.no_execute)
        from tools.run import run

        return run(project, args.lesson, args.locale)
    except (UnknownName, PoFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
