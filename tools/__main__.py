"""Command line: `python -m tools {i18n-check,po-check,translate,run,lab,setup-lab,browser,
screenshots}`.

See tools/README.md.
"""

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
    commands.add_parser(
        "po-check",
        parents=[common],
        help="run GNU msgfmt --check on every catalogue (needs gettext installed)",
    )
    commands.add_parser(
        "setup-lab",
        parents=[common],
        help="install the project's kernels and JupyterLab settings into this virtualenv",
    )
    lab = commands.add_parser(
        "lab",
        parents=[common],
        help="start JupyterLab on notebooks/ (as root too); extra arguments go to JupyterLab",
    )
    lab.add_argument(
        "--lab-args", default="", help='more JupyterLab arguments in one string: "--port=8899"'
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
    translate.add_argument(
        "--force",
        action="store_true",
        help="execute every notebook, even those whose code and package did not change",
    )

    run = commands.add_parser(
        "run", parents=[common], help="execute one notebook headless and print its output"
    )
    run.add_argument("lesson", help="02 or a full slug such as 02_intro_federated_learning")
    run.add_argument("locale", choices=LOCALES)

    commands.add_parser(
        "browser",
        parents=[common],
        help="install what the browser test needs if missing (Chromium and a Devanagari"
        " font with apt-get, the widget renderer with npm into build/vendor/)",
    )
    shots = commands.add_parser(
        "screenshots",
        parents=[common],
        help="open lessons 02 and 05 in headless Chromium (installed if missing), check"
        " that their widgets render, and save screenshots in build/screenshots/",
    )
    shots.add_argument("--lesson", action="append", help="02 or a slug (repeatable)")
    shots.add_argument(
        "--executed",
        action="store_true",
        help="use what `run` wrote in build/executed/ instead of the committed notebooks",
    )
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
        if args.command == "po-check":
            return _po_check(project)
        if args.command == "setup-lab":
            from tools import lab

            for path in lab.setup():
                print(f"wrote {path}")
            return 0
        if args.command == "lab":
            from tools import lab

            return lab.main(project.root / "notebooks", args.lab_args)
        if args.command == "translate":
            from tools.translate import translate

            lessons = [project.find_lesson(args.lesson)] if args.lesson else project.lessons()
            return translate(project, lessons, execute=not args.no_execute, force=args.force)
        if args.command == "browser":
            return _browser(project)
        if args.command == "screenshots":
            return _screenshots(project, args.lesson, args.executed)
        from tools.run import run

        return run(project, args.lesson, args.locale)
    except (UnknownName, PoFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _po_check(project: Project) -> int:
    from tools import msgfmt

    paths = msgfmt.catalogues(project)
    try:
        problems = msgfmt.problems(paths, project)
    except msgfmt.Missing as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem)
    print(f"po-check: {'FAILED' if problems else 'OK'} ({len(paths)} catalogues)")
    return 1 if problems else 0


def _browser(project: Project) -> int:
    from tools import browser

    try:
        chromium = browser.ensure_browser()
        assets = browser.vendor(project.root / "build" / "vendor")
    except browser.Unavailable as error:
        print(f"error: no browser: {error}", file=sys.stderr)
        return 2
    print(f"chromium: {chromium}")
    print(f"Devanagari fonts: {', '.join(browser.devanagari_families())}")
    print(f"widget renderer: {project.relative(assets.widget_renderer)}")
    return 0


def _screenshots(project: Project, keys: list[str] | None, executed: bool) -> int:
    from tools import screenshots
    from tools.browser import Unavailable

    lessons = [project.find_lesson(key) for key in keys or screenshots.LESSONS]
    build = project.root / "build"
    try:
        results = screenshots.capture(
            project, lessons, LOCALES, build / "html", build / "screenshots", executed=executed
        )
    except Unavailable as error:
        print(f"error: no browser: {error}", file=sys.stderr)
        return 2
    for line in screenshots.report(results, project):
        print(line)
    return 1 if any(result.errors for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
