"""README.md → locales/hi/LC_MESSAGES/README.po → README.hi.md, on a small README in tmp_path."""

from __future__ import annotations

from pathlib import Path

from tools import catalog as catalogs
from tools import readme
from tools.check import check_project
from tools.comments import CONTEXT as COMMENT
from tools.paths import Project
from tools.translate import translate

README = """\
# demo

Learn with two workers.

```python
x = x.send(bob)  # bob holds x now
```

| # | lesson |
|---|---|
| 1 | [Tools](notebooks/en/01.ipynb) |

```
tools/   the build
```
"""

HINDI = {
    ("# demo", None): "# demo",
    ("Learn with two workers.", None): "दो वर्करों के साथ सीखिए।",
    ("bob holds x now", COMMENT): "अब x बॉब के पास है",
    ("| # | lesson |", None): "| # | पाठ |",
    ("| 1 | [Tools](notebooks/en/01.ipynb) |", None): "| 1 | [औज़ार](notebooks/en/01.ipynb) |",
    ("tools/   the build", readme.LINE): "tools/   बिल्ड",
}


def project_with(tmp_path: Path, text: str = README) -> Project:
    (tmp_path / "README.md").write_text(text, "utf-8")
    return Project(tmp_path)


def run_translate(project: Project) -> None:
    translate(project, [], execute=False, out=lambda _line: None)


def fill(project: Project, strings: dict) -> None:
    path = readme.Readme(project, "hi").catalog_path
    catalog = catalogs.read(path)
    for (msgid, context), string in strings.items():
        message = catalog.get(msgid, context=context)
        assert message is not None, msgid
        message.string = string
        message.flags.discard("fuzzy")
    catalogs.write(catalog, path)


def test_messages_are_paragraphs_table_rows_code_comments_and_untyped_lines(
    tmp_path: Path,
) -> None:
    found = readme.messages(readme.Readme(project_with(tmp_path), "hi"))
    assert [(m.msgid, m.context, m.line) for m in found] == [
        ("# demo", None, 1),
        ("Learn with two workers.", None, 3),
        ("bob holds x now", COMMENT, 6),
        ("| # | lesson |", None, 9),
        ("| 1 | [Tools](notebooks/en/01.ipynb) |", None, 11),
        ("tools/   the build", readme.LINE, 14),
    ]


def test_translate_writes_the_catalogue_and_the_hindi_readme(tmp_path: Path) -> None:
    project = project_with(tmp_path)
    run_translate(project)
    output = tmp_path / "README.hi.md"
    assert output.read_text("utf-8") == README  # nothing translated yet: the English
    assert check_project(project).problems[0].startswith("locales/hi/LC_MESSAGES/README.po:")
    fill(project, HINDI)
    run_translate(project)
    assert output.read_text("utf-8") == (
        "# demo\n\nदो वर्करों के साथ सीखिए।\n\n```python\n"
        "x = x.send(bob)  # अब x बॉब के पास है\n```\n\n"
        "| # | पाठ |\n|---|---|\n| 1 | [औज़ार](notebooks/en/01.ipynb) |\n\n"
        "```\ntools/   बिल्ड\n```\n"
    )
    assert check_project(project).problems == []


def test_a_new_row_is_one_new_message_and_the_old_rows_stay_translated(tmp_path: Path) -> None:
    project = project_with(tmp_path)
    run_translate(project)
    fill(project, HINDI)
    grown = README.replace(
        "| 1 | [Tools](notebooks/en/01.ipynb) |",
        "| 1 | [Tools](notebooks/en/01.ipynb) |\n| 2 | [More](notebooks/en/02.ipynb) |",
    ).replace("two workers", "three workers")
    project_with(tmp_path, grown)
    run_translate(project)
    problems = check_project(project).problems
    assert [p.split(": ", 2)[2] for p in problems] == [
        "fuzzy translation (review, then drop the flag): 'Learn with three workers.'",
        # Babel offers the nearest old row as a fuzzy start for the new one
        "fuzzy translation (review, then drop the flag): '| 2 | [More](notebooks/en/02.ipynb) |'",
    ]
    assert problems[1].split(": ")[1] == "README.md:12"
    # the untranslated row falls back to the English; the rest stays Hindi
    text = (tmp_path / "README.hi.md").read_text("utf-8")
    assert "| 2 | [More](notebooks/en/02.ipynb) |" in text and "| # | पाठ |" in text


def test_check_reports_broken_markdown_and_a_hand_edited_readme(tmp_path: Path) -> None:
    project = project_with(tmp_path)
    run_translate(project)
    row = ("| 1 | [Tools](notebooks/en/01.ipynb) |", None)
    broken = {**HINDI, row: "| 1 | [औज़ार](notebooks/hi/01.ipynb) |"}
    fill(project, broken)
    run_translate(project)
    (tmp_path / "README.hi.md").write_text("# हाथ से बदला गया\n", "utf-8")
    problems = check_project(project).problems
    assert len(problems) == 2, problems
    assert "README.md:11: URLs must be kept exactly: missing notebooks/en/01.ipynb" in problems[0]
    assert problems[1] == (
        "README.hi.md: stale, differs from README.md and"
        " locales/hi/LC_MESSAGES/README.po; run `make translate`"
    )


def test_a_checkout_without_readme_has_nothing_to_check(tmp_path: Path) -> None:
    project = Project(tmp_path)
    assert readme.check(project, "hi", []) == (0, [])
    assert readme.update(project, "hi") == (None, [], [])
