"""Printed text: the labels a lesson prints are messages, translated in the code itself."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat

from tools import build, convergence, printed
from tools import catalog as catalogs
from tools.check import check_project
from tools.messages import extract
from tools.paths import Lesson, Project
from tools.sources import load
from tools.template import read_template
from tools.translate import translate

LESSON = Lesson(number="01", slug="01_demo")

CELL = """\
ages = {"alice": 31, "bob": 47}
budget = dict(description="not a label")
for r in range(3):
    print(f"round {r} loss {0.5 / (r + 1):.4f}")
print('budget left', len(ages), ages["bob"])
print(r"done\\n")
print(f"{r}:{r}")
print("two" " pieces")
print(sorted(ages), "keys" in ages, str("inner"))
log = print
"""

TEMPLATE = """\
---
lesson:
  title: Printing
---

# Printing

Some text.

```python convergence={"pattern": "loss ([0-9.]+)", "ratio_below": 0.5, "min_count": 3}
for r in range(3):
    # one line per round
    print(f"round {r} loss {0.5 / (r + 1):.4f}")
print("budget left", 3)
```
"""

HINDI = {
    ("# Printing", None): "# छापना",
    ("Some text.", None): "कुछ पाठ।",
    ("one line per round", "code comment"): "हर राउंड की एक पंक्ति",
    ("round {r} loss {0.5 / (r + 1):.4f}", printed.CONTEXT): "राउंड {r}: लॉस {0.5 / (r + 1):.4f}",
    ("budget left", printed.CONTEXT): "बचा हुआ बजट",
}


GLOSSARY = "english\thindi\tavoid\tkind\tgender\nround\tराउंड\tदौर\tloan\tm\nloss\tलॉस\t\tloan\tm\n"


def make_project(root: Path, strings: dict | None = None) -> Project:
    (root / "locales" / "hi").mkdir(parents=True)
    (root / "locales" / "hi" / "glossary.tsv").write_text(GLOSSARY, "utf-8")
    (root / "notebooks" / "templates").mkdir(parents=True)
    (root / "notebooks" / "templates" / f"{LESSON.slug}.md").write_text(TEMPLATE, "utf-8")
    project = Project(root)
    translate(project, [LESSON], execute=False, out=lambda _line: None)
    path = project.catalog(LESSON, "hi")
    catalog = catalogs.read(path)
    for (msgid, context), string in (HINDI if strings is None else strings).items():
        entry = catalog.get(msgid, context=context)
        assert entry is not None, msgid
        entry.string = string
    catalogs.write(catalog, path)
    translate(project, [LESSON], execute=False, out=lambda _line: None)
    return project


def test_only_literals_printed_directly_are_found_with_their_source_text() -> None:
    found = printed.find_printed(CELL)
    assert [(p.line, p.prefix, p.quote, p.text) for p in found] == [
        (3, "f", '"', "round {r} loss {0.5 / (r + 1):.4f}"),
        (4, "", "'", "budget left"),
        (5, "r", '"', "done\\n"),
    ]
    lines = CELL.split("\n")
    first = found[0]
    assert lines[first.line][first.column : first.end_column] == first.text


def test_translation_replaces_only_the_text_between_the_quotes() -> None:
    hindi = {"round {r} loss {0.5 / (r + 1):.4f}": "राउंड {r} लॉस {0.5 / (r + 1):.4f}"}
    source = printed.render(CELL, hindi.get)
    before, after = CELL.split("\n"), source.split("\n")
    assert after[3] == '    print(f"राउंड {r} लॉस {0.5 / (r + 1):.4f}")'
    assert [a for a, b in zip(before, after, strict=True) if a != b] == [before[3]]
    assert ast.dump(ast.parse(source)).count("JoinedStr") == ast.dump(ast.parse(CELL)).count(
        "JoinedStr"
    )


def test_two_texts_on_one_line_are_both_translated() -> None:
    source = 'print("neighbours:", 3, "threshold:", 2)'
    hindi = {"neighbours:": "पड़ोसी:", "threshold:": "थ्रेशोल्ड:"}
    assert printed.render(source, hindi.get) == 'print("पड़ोसी:", 3, "थ्रेशोल्ड:", 2)'


def test_printed_texts_are_messages_of_their_own_context(tmp_path: Path) -> None:
    (tmp_path / "t.md").write_text(TEMPLATE, "utf-8")
    found = [(m.msgid, m.context, m.line) for m in extract(read_template(tmp_path / "t.md"))]
    assert found[2:] == [
        ("one line per round", "code comment", 12),
        ("round {r} loss {0.5 / (r + 1):.4f}", printed.CONTEXT, 13),
        ("budget left", printed.CONTEXT, 14),
    ]


def test_placeholders_are_the_fields_as_written() -> None:
    assert printed.placeholders("a {x:.1%} {{b}} {f(y)[0]:{w}} c") == ["{x:.1%}", "{f(y)[0]:{w}}"]
    assert printed.problems("loss {v:.4f}", "लॉस {v:.4f}") == []
    assert printed.problems("loss {v:.4f}", "लॉस {v:.3f}") == [
        "printed text must keep its {placeholders} exactly:"
        " missing {v:.4f}; not in the English {v:.3f}"
    ]
    assert printed.problems("done", 'हो "गया"', prefix="", quote='"') == [
        'the translation does not fit between the quotes "…"'
    ]


def test_the_hindi_notebook_prints_hindi_and_keeps_the_code(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    sources = load(project, LESSON)
    english = build.render(sources.template, LESSON, "en")
    hindi = build.render(sources.template, LESSON, "hi", sources.catalog("hi"))
    code = hindi.cells[1].source
    assert '    print(f"राउंड {r}: लॉस {0.5 / (r + 1):.4f}")' in code
    assert 'print("बचा हुआ बजट", 3)' in code
    assert "    # हर राउंड की एक पंक्ति" in code
    assert english.cells[1].metadata["convergence"]["pattern"] == "loss ([0-9.]+)"
    assert hindi.cells[1].metadata["convergence"] == {
        "pattern": "राउंड .*?: लॉस ([0-9.]+)",
        "ratio_below": 0.5,
        "min_count": 3,
    }


def _executed(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Run each code cell in this process, as the kernel would, capturing stdout."""
    import contextlib
    import io

    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(cell.source, {})  # noqa: S102 - our own template's code
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=out.getvalue())]
    return notebook


def test_convergence_follows_the_translation(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    sources = load(project, LESSON)
    english = _executed(build.render(sources.template, LESSON, "en"))
    hindi = _executed(build.render(sources.template, LESSON, "hi", sources.catalog("hi")))
    assert "राउंड 2: लॉस 0.1667" in hindi.cells[1].outputs[0].text
    assert convergence.check(english) == []
    assert convergence.check(hindi) == []
    # the English pattern on the Hindi output matches nothing, and says so
    hindi.cells[1].metadata["convergence"] = english.cells[1].metadata["convergence"]
    assert convergence.check(hindi) == [
        "cell 1 (for r in range(3):): printed 0 values matching 'loss ([0-9.]+)', need 3"
    ]


def test_outputs_compare_once_the_translation_is_undone() -> None:
    pairs = [
        ("round {r} loss {v:.4f}", "राउंड {r}: लॉस {v:.4f}"),
        ("budget left", "बचा हुआ बजट"),
    ]
    hindi = "राउंड 0: लॉस 0.5000\nराउंड 1: लॉस 0.2500\nबचा हुआ बजट 3\n"
    assert printed.untranslate(hindi, pairs) == (
        "round 0 loss 0.5000\nround 1 loss 0.2500\nbudget left 3\n"
    )
    # a label that begins another one's translation does not cut the longer one short
    pairs.append(("budget left {b:.2f} of {t}", "बचा हुआ बजट {b:.2f}, कुल {t} में से"))
    assert printed.untranslate("बचा हुआ बजट 2.75, कुल 5 में से\n", pairs) == ("budget left 2.75 of 5\n")


def test_a_pattern_reading_two_printed_texts_is_reported() -> None:
    source = 'print(f"train loss {a:.3f}")\nprint(f"test loss {b:.3f}")\n'
    spec = {"pattern": "loss ([0-9.]+)"}
    assert convergence.source_problems(spec, source) == [
        "convergence pattern 'loss ([0-9.]+)' reads more than one printed text:"
        " {a:.3f} in 'train loss {a:.3f}'; {b:.3f} in 'test loss {b:.3f}'"
    ]
    assert convergence.source_problems({"pattern": "train loss ([0-9.]+)"}, source) == []
    # a pattern over output no printed text makes is kept in every language
    assert convergence.localize({"pattern": r"tensor\(([0-9.]+)"}, source, str.upper) == {
        "pattern": r"tensor\(([0-9.]+)"
    }


def test_check_reports_a_lost_placeholder_and_the_glossary(tmp_path: Path, capsys) -> None:
    strings = dict(HINDI)
    strings[("round {r} loss {0.5 / (r + 1):.4f}", printed.CONTEXT)] = "दौर {r} लॉस"
    project = make_project(tmp_path, strings)
    report = check_project(project, [LESSON])
    printed_problems = [p for p in report.problems if "01_demo.po" in p]
    assert any(
        "printed text must keep its {placeholders} exactly: missing {0.5 / (r + 1):.4f}" in p
        for p in printed_problems
    ), printed_problems
    assert any("'round' must be translated as 'राउंड'" in p for p in printed_problems)
    assert any("variant" in p and "दौर" in p for p in printed_problems), printed_problems


def test_a_complete_translation_checks_clean_but_for_unexecuted_notebooks(tmp_path: Path) -> None:
    report = check_project(make_project(tmp_path), [LESSON])
    assert [p for p in report.problems if "not executed" not in p] == []


def test_printed_entries_carry_no_format_flag_for_msgfmt(tmp_path: Path) -> None:
    """An f-string's fields are code (`{0.5 / (r + 1):.4f}`), which GNU msgfmt would reject
    as python-brace-format; a "%" in a label is no python-format either."""
    project = make_project(tmp_path)
    text = project.catalog(LESSON, "hi").read_text("utf-8")
    assert 'msgctxt "printed text"\nmsgid "round {r} loss {0.5 / (r + 1):.4f}"' in text
    assert "python-brace-format" not in text and "python-format" not in text


def test_a_pattern_follows_a_label_printed_by_a_function_of_an_earlier_cell() -> None:
    earlier = [
        "def train(rounds):\n"
        "    for r in range(rounds):\n"
        '        print(f"round {r} accuracy {r / 4:.3f}")\n',
        'print(f"{3} owners")\n',
    ]
    spec = {"pattern": "accuracy ([0-9.]+)", "min_count": 4}
    hindi = {"round {r} accuracy {r / 4:.3f}": "राउंड {r}: सटीकता {r / 4:.3f}"}
    localized = convergence.localize(spec, "train(4)\n", hindi.get, earlier)
    assert localized == {"pattern": "राउंड .*?: सटीकता ([0-9.]+)", "min_count": 4}
    # the cell's own printed text comes first
    own = 'print(f"test accuracy {0.5:.3f}")\n'
    assert convergence.followed(spec["pattern"], own, earlier) == [
        ("test accuracy {0.5:.3f}", "{0.5:.3f}")
    ]
