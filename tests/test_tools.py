"""Unit tests of the lesson build tooling, on small templates made in tmp_path."""

from __future__ import annotations

import copy
import io
import json
import textwrap
from pathlib import Path

import jupytext
import nbformat
import pytest
from babel.messages.pofile import read_po

from tools import (
    build,
    comments,
    compare,
    convergence,
    freshness,
    glossary,
    kernel,
    markdown,
    msgfmt,
    outputs,
    printed,
    structure,
    widget_state,
)
from tools import catalog as catalogs
from tools.__main__ import main
from tools.check import check_project
from tools.paths import DEFAULT_ROOT, Lesson, Project, UnknownName
from tools.sources import load
from tools.translate import translate

LESSON = Lesson(number="01", slug="01_demo")

TEMPLATE = """\
---
lesson:
  title: A demo
---

# A demo of pointers

A pointer refers to a tensor that lives on a worker.
It is moved with `.send(bob)`; see https://example.org/fl.

- first item
- second item

```text
kept as it is
```

```python
# make a toy loss curve
losses = [1.0 / (step + 1) for step in range(4)]
```

```python convergence={"pattern": "loss=([0-9.]+)", "final_below": 0.3, "ratio_below": 0.5}
for step, loss in enumerate(losses):
    # print one loss per step
    print(f"loss={loss:.3f}")  # not a full-line comment
```
"""

HINDI = {
    ("# A demo of pointers", None): "# पॉइंटर का एक डेमो",
    (
        "A pointer refers to a tensor that lives on a worker.\n"
        "It is moved with `.send(bob)`; see https://example.org/fl.",
        None,
    ): "पॉइंटर किसी वर्कर पर रखे टेंसर की ओर इशारा करता है।\n"
    "इसे `.send(bob)` से भेजते हैं; देखें https://example.org/fl।",
    ("- first item\n- second item", None): "- पहला\n- दूसरा",
    ("make a toy loss curve", comments.CONTEXT): "एक छोटा लॉस वक्र बनाइए",
    ("print one loss per step", comments.CONTEXT): "हर स्टेप का लॉस छापिए",
    ("loss={loss:.3f}", printed.CONTEXT): "लॉस={loss:.3f}",
}


def make_project(root: Path, template: str = TEMPLATE) -> Project:
    (root / "notebooks" / "templates").mkdir(parents=True, exist_ok=True)
    (root / "notebooks" / "templates" / f"{LESSON.slug}.md").write_text(template, "utf-8")
    return Project(root)


def fill_catalog(project: Project, strings: dict, fuzzy: tuple = ()) -> None:
    """What a translator does: set msgstr (and maybe leave a fuzzy flag) in the PO file."""
    path = project.catalog(LESSON, "hi")
    catalog = catalogs.read(path)
    for (msgid, context), string in strings.items():
        message = catalog.get(msgid, context=context)
        assert message is not None, msgid
        message.string = string
        if msgid in fuzzy:
            message.flags.add("fuzzy")
        else:
            message.flags.discard("fuzzy")
    catalogs.write(catalog, path)


def translated_project(tmp_path: Path, strings: dict | None = None) -> Project:
    project = make_project(tmp_path)
    translate(project, [LESSON], execute=False, out=lambda _line: None)
    fill_catalog(project, HINDI if strings is None else strings)
    translate(project, [LESSON], execute=False, out=lambda _line: None)
    return project


def mark_executed(project: Project) -> None:
    """Stand in for papermill where only the notebooks' sources matter."""
    for locale in ("en", "hi"):
        path = project.notebook(LESSON, locale)
        notebook = nbformat.read(path, as_version=4)
        for count, cell in enumerate(c for c in notebook.cells if c.cell_type == "code"):
            cell.execution_count = count + 1
        build.write(notebook, path)


# --- templates and messages -------------------------------------------------------------


def test_jupytext_parses_json_metadata_on_the_fence_line() -> None:
    notebook = jupytext.reads(TEMPLATE, fmt="md")
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code[1].metadata["convergence"] == {
        "pattern": "loss=([0-9.]+)",
        "final_below": 0.3,
        "ratio_below": 0.5,
    }


def test_messages_are_paragraphs_and_comments_at_their_template_lines(tmp_path: Path) -> None:
    sources = load(make_project(tmp_path), LESSON)
    found = [(m.msgid, m.context, m.line) for m in sources.messages]
    assert found == [
        ("# A demo of pointers", None, 6),
        (
            "A pointer refers to a tensor that lives on a worker.\n"
            "It is moved with `.send(bob)`; see https://example.org/fl.",
            None,
            8,
        ),
        ("- first item\n- second item", None, 11),
        ("make a toy loss curve", comments.CONTEXT, 19),
        ("print one loss per step", comments.CONTEXT, 25),
        ("loss={loss:.3f}", printed.CONTEXT, 26),
    ]
    pot = sources.pot()
    assert pot.get("# A demo of pointers").locations == [("notebooks/templates/01_demo.md", 6)]


def test_a_table_and_a_list_without_blank_lines_are_one_paragraph_each() -> None:
    source = "| a | b |\n|---|---|\n| 1 | 2 |\n\n1. one\n2. two\n   more"
    msgids = [block.msgid for block in markdown.split_blocks(source) if block.msgid]
    assert msgids == ["| a | b |\n|---|---|\n| 1 | 2 |", "1. one\n2. two\n   more"]


def test_a_fence_stays_whole_and_untranslated_even_without_blank_lines() -> None:
    source = "Run this:\n```bash\necho hi\n\necho there\n```\nThen look."
    blocks = markdown.split_blocks(source)
    assert [(b.kind, b.msgid) for b in blocks] == [
        ("text", "Run this:"),
        ("fence", None),
        ("text", "Then look."),
    ]
    assert blocks[1].lines == ("```bash", "echo hi", "", "echo there", "```")
    rendered = markdown.render(source, lambda text: text.upper())
    assert rendered == "RUN THIS:\n```bash\necho hi\n\necho there\n```\nTHEN LOOK."


def test_blank_whitespace_and_letterless_paragraphs_are_not_messages() -> None:
    source = "One.\n   \n\n---\n\n<!-- a note -->\n\nTwo."
    assert [b.msgid for b in markdown.split_blocks(source) if b.msgid] == ["One.", "Two."]
    assert markdown.render(source, lambda _text: None) == source


def test_an_indented_paragraph_is_translated_without_its_indentation() -> None:
    source = "- item\n\n  continued here\n  and here"
    blocks = markdown.split_blocks(source)
    assert blocks[-1].msgid == "continued here\nand here"
    assert markdown.render(source, lambda t: "X" if t.startswith("cont") else None) == (
        "- item\n\n  X"
    )


def test_code_comments_are_full_lines_only_and_keep_their_indentation() -> None:
    source = textwrap.dedent(
        '''\
        #!/usr/bin/env python
        # move the model
        model.send(bob)  # trailing: not a message
        text = """
        # inside a string: not a comment
        """
        def f():
            ## nested step
            return 1
        # ---
        '''
    )
    found = comments.find_comments(source)
    assert [(c.index, c.prefix, c.text) for c in found] == [
        (1, "# ", "move the model"),
        (7, "    ## ", "nested step"),
    ]
    rendered = comments.render(source, {"move the model": "मॉडल भेजिए", "nested step": "चरण"}.get)
    lines = rendered.split("\n")
    assert lines[1] == "# मॉडल भेजिए"
    assert lines[7] == "    ## चरण"
    assert [line for i, line in enumerate(lines) if i not in (1, 7)] == [
        line for i, line in enumerate(source.split("\n")) if i not in (1, 7)
    ]


def test_comments_of_a_cell_that_does_not_tokenize_are_still_found() -> None:
    source = "%%bash\n# list the files\nls 'unterminated"
    assert [c.text for c in comments.find_comments(source)] == ["list the files"]


# --- rendering ---------------------------------------------------------------------------


def test_english_notebook_is_the_template_with_fixed_metadata_and_ids(tmp_path: Path) -> None:
    sources = load(make_project(tmp_path), LESSON)
    notebook = build.render(sources.template, LESSON, "en")
    assert notebook.metadata == {
        "kernelspec": {
            "name": "federated-en",
            "display_name": "federated (Python 3, English)",
            "language": "python",
        },
        "language_info": kernel.language_info(),
        "federated": {"lesson": "01", "locale": "en"},
    }
    hindi = build.render(sources.template, LESSON, "hi")
    assert hindi.metadata["kernelspec"]["name"] == "federated-hi"
    assert [cell.id for cell in notebook.cells] == ["cell-000", "cell-001", "cell-002"]
    assert notebook.cells[0].source.startswith("# A demo of pointers\n\nA pointer refers")
    assert "```text\nkept as it is\n```" in notebook.cells[0].source
    assert "jupytext" not in notebook.metadata
    assert all(not cell.source.startswith("---") for cell in notebook.cells)
    again = build.render(load(Project(tmp_path), LESSON).template, LESSON, "en")
    assert nbformat.writes(again) == nbformat.writes(notebook)


def test_hindi_notebook_replaces_text_and_keeps_the_code(tmp_path: Path) -> None:
    project = translated_project(tmp_path)
    sources = load(project, LESSON)
    english = build.render(sources.template, LESSON, "en")
    hindi = build.render(sources.template, LESSON, "hi", sources.catalog("hi"))
    assert hindi.metadata["federated"] == {"lesson": "01", "locale": "hi"}
    assert hindi.cells[0].source.startswith("# पॉइंटर का एक डेमो\n\nपॉइंटर किसी वर्कर")
    assert "```text\nkept as it is\n```" in hindi.cells[0].source
    assert hindi.cells[1].source == (
        "# एक छोटा लॉस वक्र बनाइए\nlosses = [1.0 / (step + 1) for step in range(4)]"
    )
    assert "    # हर स्टेप का लॉस छापिए\n" in hindi.cells[2].source
    assert '    print(f"लॉस={loss:.3f}")  # not a full-line comment' in hindi.cells[2].source
    # the convergence pattern reads the translated label
    assert hindi.cells[2].metadata["convergence"]["pattern"] == "लॉस=([0-9.]+)"
    hindi.cells[2].metadata = english.cells[2].metadata
    for en, hi in zip(english.cells, hindi.cells, strict=True):
        assert en.cell_type == hi.cell_type and en.metadata == hi.metadata
        if en.cell_type == "code":
            english_labels = printed.render(en.source, lambda _text: "")
            hindi_labels = printed.render(hi.source, lambda _text: "")
            assert comments.mask(english_labels) == comments.mask(hindi_labels)


def test_fuzzy_and_missing_translations_fall_back_to_english(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    translate(project, [LESSON], execute=False, out=lambda _line: None)
    fill_catalog(
        project,
        {
            ("# A demo of pointers", None): "# डेमो",
            ("- first item\n- second item", None): "- क\n- ख",
        },
        fuzzy=("# A demo of pointers",),
    )
    sources = load(project, LESSON)
    hindi = build.render(sources.template, LESSON, "hi", sources.catalog("hi"))
    assert hindi.cells[0].source.startswith("# A demo of pointers\n\nA pointer refers")
    assert "\n- क\n- ख\n" in hindi.cells[0].source


# --- catalogues --------------------------------------------------------------------------


def test_new_catalogue_has_the_header_and_empty_msgstrs(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    translate(project, [LESSON], execute=False, out=lambda _line: None)
    text = project.catalog(LESSON, "hi").read_text("utf-8")
    assert '"Language: hi\\n"' in text
    assert '"Project-Id-Version: federated lessons\\n"' in text
    assert "charset=utf-8" in text
    assert "#: notebooks/templates/01_demo.md:8\n" in text
    assert 'msgctxt "code comment"\nmsgid "make a toy loss curve"\nmsgstr ""\n' in text
    catalog = catalogs.read(project.catalog(LESSON, "hi"))
    assert [m.string for m in catalog if m.id] == [""] * 6


def test_changed_sentence_becomes_fuzzy_with_its_previous_msgid(tmp_path: Path) -> None:
    project = translated_project(tmp_path)
    changed = TEMPLATE.replace("# A demo of pointers", "# A small demo of pointers")
    make_project(tmp_path, changed)
    translate(project, [LESSON], execute=False, out=lambda _line: None)
    path = project.catalog(LESSON, "hi")
    message = catalogs.read(path).get("# A small demo of pointers")
    assert message.fuzzy
    assert message.string == "# पॉइंटर का एक डेमो"
    assert message.previous_id == ["# A demo of pointers"]
    text = path.read_text("utf-8")
    assert '#, fuzzy\n#| msgid "# A demo of pointers"\nmsgid "# A small demo of pointers"' in text
    # a second run keeps the previous msgid (Babel alone would turn it into a comment)
    before = path.read_bytes()
    translate(project, [LESSON], execute=False, out=lambda _line: None)
    assert path.read_bytes() == before
    assert catalogs.read(path).get("# A small demo of pointers").previous_id == [
        "# A demo of pointers"
    ]


def test_translate_twice_changes_no_file(tmp_path: Path) -> None:
    project = translated_project(tmp_path)
    files = [
        project.catalog(LESSON, "hi"),
        project.notebook(LESSON, "en"),
        project.notebook(LESSON, "hi"),
    ]
    before = [path.read_bytes() for path in files]
    written: list[str] = []
    translate(project, [LESSON], execute=False, out=written.append)
    assert [path.read_bytes() for path in files] == before
    assert not any(line.startswith("wrote") for line in written)


def test_removed_messages_are_kept_obsolete_and_revived_when_they_return(tmp_path: Path) -> None:
    project = translated_project(tmp_path)
    make_project(tmp_path, TEMPLATE.replace("- first item\n- second item\n\n", ""))
    translate(project, [LESSON], execute=False, out=lambda _line: None)
    path = project.catalog(LESSON, "hi")
    assert '#~ msgid ""\n#~ "- first item\\n"\n#~ "- second item"\n#~ msgstr ""' in path.read_text(
        "utf-8"
    )
    assert catalogs.read(path).get("- first item\n- second item") is None
    make_project(tmp_path, TEMPLATE)
    translate(project, [LESSON], execute=False, out=lambda _line: None)
    revived = catalogs.read(path).get("- first item\n- second item")
    assert revived.string == "- पहला\n- दूसरा" and not revived.fuzzy
    assert "#~" not in path.read_text("utf-8")


def test_babel_update_alone_matches_fuzzily_and_records_previous_id() -> None:
    """The behaviour catalog.merge builds on, checked against the installed Babel."""
    old = read_po(io.StringIO('msgid "The worker holds a tensor."\nmsgstr "वर्कर"\n'))
    pot = catalogs.template_catalog([], "t.md")
    pot.add("The worker holds two tensors.", locations=[("t.md", 1)])
    merged = catalogs.merge(pot, old)
    message = merged.get("The worker holds two tensors.")
    assert message.fuzzy and message.string == "वर्कर"
    assert message.previous_id == ["The worker holds a tensor."]


def test_counts_distinguish_translated_fuzzy_and_missing(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    translate(project, [LESSON], execute=False, out=lambda _line: None)
    fill_catalog(
        project,
        {("# A demo of pointers", None): "# डेमो", ("- first item\n- second item", None): "- क"},
        fuzzy=("- first item\n- second item",),
    )
    sources = load(project, LESSON)
    counts = catalogs.counts(sources.catalog("hi"), sources.messages)
    assert counts == catalogs.Counts(translated=1, fuzzy=1, missing=4)


# --- i18n-check ----------------------------------------------------------------------------


def test_check_passes_on_a_complete_project(tmp_path: Path, capsys) -> None:
    project = translated_project(tmp_path)
    mark_executed(project)
    assert main(["i18n-check", "--root", str(project.root)]) == 0
    assert capsys.readouterr().out.strip() == "i18n-check: OK (6 messages, 2 notebooks)"


def test_check_names_a_missing_translation(tmp_path: Path, capsys) -> None:
    strings = dict(HINDI)
    del strings[("- first item\n- second item", None)]
    project = translated_project(tmp_path, strings)
    mark_executed(project)
    assert main(["--root", str(project.root), "i18n-check"]) == 1
    out = capsys.readouterr().out
    problems = [line for line in out.splitlines() if "missing translation" in line]
    assert len(problems) == 1
    assert problems[0].startswith("locales/hi/LC_MESSAGES/01_demo.po:")
    where = "notebooks/templates/01_demo.md:11"
    assert f"{where}: missing translation: '- first item - second item'" in problems[0]
    assert out.rstrip().endswith("i18n-check: FAILED (1 problems)")


def test_check_reports_a_fuzzy_translation_with_a_60_character_excerpt(tmp_path: Path) -> None:
    project = translated_project(tmp_path)
    key = next(key for key in HINDI if key[0].startswith("A pointer"))
    fill_catalog(project, {key: HINDI[key]}, fuzzy=(key[0],))
    problems = check_project(project).problems
    fuzzy = [p for p in problems if "fuzzy" in p]
    assert len(fuzzy) == 1
    assert fuzzy[0].endswith("'A pointer refers to a tensor that lives on a worker. It is m…'")


def test_check_names_the_words_that_changed_in_a_fuzzy_message(tmp_path: Path) -> None:
    project = translated_project(tmp_path)
    old = next(key for key in HINDI if key[0].startswith("A pointer"))[0]
    make_project(tmp_path, TEMPLATE.replace("lives on a worker", "lives on a remote worker"))
    translate(project, [LESSON], execute=False, out=lambda _line: None)
    fuzzy = [p for p in check_project(project).problems if "fuzzy" in p]
    assert len(fuzzy) == 1
    assert "the English changed: added 'remote'" in fuzzy[0]
    assert catalogs.changed_words([old], old.replace("worker.", "phone.")) == (
        "'worker.' → 'phone.'"
    )
    assert catalogs.changed_words(["a b c"], "a c d") == "removed 'b', added 'd'"


def test_every_committed_catalogue_passes_msgfmt_check() -> None:
    """GNU gettext's tools (and editors built on them) must accept every catalogue."""
    project = Project(DEFAULT_ROOT)
    paths = msgfmt.catalogues(project)
    assert len(paths) >= 8
    assert msgfmt.problems(paths, project) == []


def test_a_catalogue_with_a_long_fuzzy_message_passes_msgfmt_check(tmp_path: Path) -> None:
    project = translated_project(tmp_path)
    old = next(key for key in HINDI if key[0].startswith("A pointer"))[0]
    make_project(tmp_path, TEMPLATE.replace(old, old + " " + "A long sentence. " * 8))
    translate(project, [LESSON], execute=False, out=lambda _line: None)
    path = project.catalog(LESSON, "hi")
    assert "#, fuzzy" in path.read_text("utf-8")
    assert msgfmt.problems([path], project) == []


def test_check_reports_broken_structure_in_a_translation(tmp_path: Path) -> None:
    strings = dict(HINDI)
    strings[("# A demo of pointers", None)] = "## पॉइंटर का एक डेमो"
    key = next(key for key in HINDI if key[0].startswith("A pointer"))
    strings[key] = "पॉइंटर टेंसर की ओर इशारा करता है। इसे .send(bob) से भेजते हैं।"
    project = translated_project(tmp_path, strings)
    mark_executed(project)
    problems = check_project(project).problems
    assert any("md:6: heading level changed" in p for p in problems)
    code, url = "missing `.send(bob)`", "missing https://example.org/fl"
    assert any(f"md:8: inline code must be kept exactly: {code}" in p for p in problems)
    assert any(f"md:8: URLs must be kept exactly: {url}" in p for p in problems)
    assert len(problems) == 3


@pytest.mark.parametrize(
    ("msgid", "msgstr", "expected"),
    [
        ("# Title", "# शीर्षक", []),
        ("# Title", "शीर्षक", ["heading level changed: the English has heading '#'"]),
        ("- a\n- b", "- क\n* ख", ["list markers differ from the English"]),
        ("- a\n  - b", "- क\n- ख", ["list markers differ from the English"]),
        ("1. a\n2. b", "1. क\n2. ख", []),
        ("Use `x` and `y`.", "`y` और `x` लें।", []),
        ("Use `x`.", "x लें।", ["inline code must be kept exactly: missing `x`"]),
        ("See https://a.org/x.", "देखें https://a.org/x।", []),
        ("[docs](../02_b.ipynb)", "[दस्तावेज़](../03_c.ipynb)", ["URLs must be kept exactly"]),
        ("| a | b |\n|---|---|", "| क | ख |\n|---|---|", []),
        ("| a | b |\n|---|---|", "| क ख |\n|---|---|", ["table rows or columns differ"]),
        ("Run ``` here", "यहाँ चलाएँ", ["code fences differ from the English"]),
    ],
)
def test_structure_problems(msgid: str, msgstr: str, expected: list[str]) -> None:
    found = structure.problems(msgid, msgstr)
    assert len(found) == len(expected)
    for problem, start in zip(found, expected, strict=True):
        assert problem.startswith(start)


def test_a_code_comment_translation_must_stay_on_one_line() -> None:
    assert structure.problems("move it", "इसे\nभेजिए", comment=True) == [
        "a code comment's translation must be one line"
    ]


def test_stale_and_unexecuted_notebooks_are_reported(tmp_path: Path) -> None:
    project = translated_project(tmp_path)
    assert check_project(project).problems == [
        "notebooks/en/01_demo.ipynb: not executed (code cells 1, 2); run `make translate`",
        "notebooks/hi/01_demo.ipynb: not executed (code cells 1, 2); run `make translate`",
    ]
    mark_executed(project)
    code = "losses = [1.0 / (step + 1) for step in range(4)]"
    make_project(tmp_path, TEMPLATE.replace(code, code.replace("4", "5")))
    problems = check_project(project).problems
    assert len(problems) == 2
    assert all("stale, cell 1 source differs" in p for p in problems)
    assert problems[0].startswith("notebooks/en/01_demo.ipynb: ")
    assert problems[1].startswith("notebooks/hi/01_demo.ipynb: ")


def test_a_notebook_edited_by_hand_is_stale(tmp_path: Path) -> None:
    project = translated_project(tmp_path)
    mark_executed(project)
    path = project.notebook(LESSON, "hi")
    notebook = nbformat.read(path, as_version=4)
    notebook.cells[0].source += "\n\nएक नया वाक्य"
    notebook.cells[2].metadata["tags"] = ["x"]
    build.write(notebook, path)
    differences = [p for p in check_project(project).problems if "stale" in p]
    assert len(differences) == 2
    assert "cell 0 source differs" in differences[0]
    assert "cell 2 metadata differs" in differences[1]


def test_compare_ignores_outputs_but_not_metadata() -> None:
    lesson = Lesson("01", "01_x")
    cell = nbformat.v4.new_code_cell("print(1)", id="cell-000")
    metadata = build.notebook_metadata(lesson, "en")
    expected = nbformat.v4.new_notebook(cells=[cell], metadata=metadata)
    actual = copy.deepcopy(expected)
    actual.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    actual.cells[0].execution_count = 1
    actual.metadata["language_info"]["version"] = "3.11.7"
    assert compare.differences(expected, actual) == []
    assert compare.unexecuted(actual) == []
    actual.metadata["federated"]["locale"] = "hi"
    assert compare.differences(expected, actual) == ["notebook metadata 'federated' differs"]


# --- glossary ------------------------------------------------------------------------------


def test_the_committed_glossary_is_well_formed() -> None:
    terms = glossary.load(Path(__file__).resolve().parent.parent / "locales/hi/glossary.tsv")
    assert len(terms) >= 20
    english = [term.english for term in terms]
    assert len(set(english)) == len(english)
    by_english = {term.english: term for term in terms}
    assert by_english["federated learning"].hindi == glossary.normalize("फ़ेडरेटेड लर्निंग")
    for term in terms:
        assert all(term.hindi not in variant for variant in term.avoid), term


# --- convergence ---------------------------------------------------------------------------


def executed_cell(spec: dict, stdout: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("train()", metadata={"convergence": spec})
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stdout)]
    return nbformat.v4.new_notebook(cells=[cell])


LOSSES = "".join(f"epoch {i}: loss tensor({v})\n" for i, v in enumerate([0.9, 0.3, 0.05]))
PATTERN = r"tensor\(([-0-9.e+]+)"


@pytest.mark.parametrize(
    ("spec", "stdout", "expected"),
    [
        ({"pattern": PATTERN, "final_below": 0.1, "ratio_below": 0.5}, LOSSES, []),
        ({"pattern": PATTERN, "final_below": 0.01}, LOSSES, ["final value 0.05 is not below 0.01"]),
        ({"pattern": PATTERN, "ratio_below": 0.01}, LOSSES, ["last/first = 0.05/0.9"]),
        ({"pattern": r"acc=([0-9.]+)", "final_above": 0.9}, "acc=0.5\nacc=0.95\n", []),
        ({"pattern": r"acc=([0-9.]+)", "final_above": 0.99}, "acc=0.95\n", ["final value 0.95"]),
        ({"pattern": PATTERN, "min_count": 4}, LOSSES, ["printed 3 values matching"]),
        ({"pattern": PATTERN}, "nothing printed here\n", ["printed 0 values matching"]),
        ({"pattern": PATTERN, "ratio_below": 0.5}, "tensor(0.)\ntensor(0.)", ["first value is 0"]),
        ({"pattern": "loss"}, LOSSES, ["convergence pattern 'loss' must have exactly one group"]),
        ({"pattern": PATTERN, "final_belwo": 1}, LOSSES, ["unknown convergence key 'final_belwo'"]),
    ],
)
def test_convergence(spec: dict, stdout: str, expected: list[str]) -> None:
    failures = convergence.check(executed_cell(spec, stdout))
    assert len(failures) == len(expected)
    for failure, text in zip(failures, expected, strict=True):
        assert failure.startswith("cell 0 (train()): ")
        assert text in failure


def test_convergence_reads_stdout_only_and_values_in_order() -> None:
    notebook = executed_cell({"pattern": r"loss=([0-9.]+)", "final_below": 0.5}, "loss=2\n")
    notebook.cells[0].outputs += [
        nbformat.v4.new_output("stream", name="stderr", text="loss=0.1\n"),
        nbformat.v4.new_output("stream", name="stdout", text="loss=0.75\n"),
    ]
    spec = notebook.cells[0].metadata["convergence"]
    assert convergence.values(spec, "loss=2\nloss=0.75\n") == [2.0, 0.75]
    assert convergence.check(notebook) == ["cell 0 (train()): final value 0.75 is not below 0.5"]


def test_a_cell_that_declares_convergence_but_never_ran_fails() -> None:
    notebook = executed_cell({"pattern": PATTERN}, "")
    notebook.cells[0].outputs = []
    assert convergence.check(notebook) == [
        f"cell 0 (train()): printed 0 values matching {PATTERN!r}, need 1"
    ]


# --- outputs, paths, the command line ------------------------------------------------------


def test_no_execute_keeps_outputs_only_while_the_code_is_unchanged(tmp_path: Path) -> None:
    project = translated_project(tmp_path)
    mark_executed(project)
    changed = dict(HINDI)
    changed[("make a toy loss curve", comments.CONTEXT)] = "लॉस का वक्र"
    fill_catalog(project, changed)
    printed: list[str] = []
    translate(project, [LESSON], execute=False, out=printed.append)
    rows = printed[-1].splitlines()
    assert rows[1].endswith("outputs kept") and rows[2].endswith("outputs kept")
    hindi = nbformat.read(project.notebook(LESSON, "hi"), as_version=4)
    assert hindi.cells[1].source.startswith("# लॉस का वक्र\n")
    assert compare.unexecuted(hindi) == []
    code = "losses = [1.0 / (step + 1) for step in range(4)]"
    make_project(tmp_path, TEMPLATE.replace(code, code.replace("4", "6")))
    printed.clear()
    translate(project, [LESSON], execute=False, out=printed.append)
    rows = printed[-1].splitlines()
    assert rows[1].endswith("not executed") and rows[2].endswith("not executed")


def test_find_lesson_accepts_number_or_slug(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    assert project.find_lesson("01") == LESSON
    assert project.find_lesson("1") == LESSON
    assert project.find_lesson("01_demo") == LESSON
    assert project.find_lesson("notebooks/templates/01_demo.md") == LESSON
    with pytest.raises(UnknownName, match="known: 01_demo"):
        project.find_lesson("02")


def test_a_project_without_templates_checks_ok(tmp_path: Path, capsys) -> None:
    assert main(["i18n-check", "--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == "i18n-check: OK (0 messages, 0 notebooks)"


def test_translate_executes_both_languages_and_then_the_check_passes(
    tmp_path: Path, capsys
) -> None:
    """End to end with papermill: one kernel per language, a few seconds."""
    project = translated_project(tmp_path)
    assert main(["translate", "--root", str(project.root), "--lesson", "01"]) == 0
    table = capsys.readouterr().out.splitlines()[-3:]
    assert table[0].split() == ["notebook", "lang", "translated", "fuzzy", "missing", "outputs"]
    assert table[1].split() == ["01_demo", "en", "6", "0", "0", "executed"]
    assert table[2].split() == ["01_demo", "hi", "6", "0", "0", "executed"]
    for locale, label in (("en", "loss"), ("hi", "लॉस")):
        notebook = nbformat.read(project.notebook(LESSON, locale), as_version=4)
        assert notebook.cells[2].outputs[0]["text"] == (
            f"{label}=1.000\n{label}=0.500\n{label}=0.333\n{label}=0.250\n"
        )
        assert notebook.cells[2].execution_count == 2
        text = project.notebook(LESSON, locale).read_text("utf-8")
        assert "papermill" not in text and "iopub" not in text
        assert notebook.metadata.language_info == kernel.language_info()
        assert notebook.metadata.kernelspec == kernel.notebook_kernelspec(locale)
    assert convergence.check(nbformat.read(project.notebook(LESSON, "hi"), as_version=4)) == []
    assert check_project(project).ok
    assert main(["run", "01", "hi", "--root", str(project.root)]) == 0
    out = capsys.readouterr().out
    assert "लॉस=0.250" in out and "convergence OK" in out
    assert project.executed(LESSON, "hi").exists()


def _states(printed: list[str]) -> dict[str, str]:
    rows = printed[-1].splitlines()[1:]
    return {row.split()[1]: " ".join(row.split()[5:]) for row in rows}


def test_translate_executes_only_what_changed_and_rewrites_nothing_else(tmp_path: Path) -> None:
    """A fixed sentence rebuilds without running anything; changed code runs again."""
    project = translated_project(tmp_path)
    assert translate(project, [LESSON], out=lambda _line: None) == 0
    paths = {locale: project.notebook(LESSON, locale) for locale in ("en", "hi")}
    first = {locale: path.read_bytes() for locale, path in paths.items()}
    recorded = freshness.recorded(nbformat.read(paths["en"], as_version=4))
    assert recorded is not None and recorded.startswith("sha256:")

    printed: list[str] = []
    assert translate(project, [LESSON], out=printed.append) == 0
    assert _states(printed) == {"en": "kept (code unchanged)", "hi": "kept (code unchanged)"}
    assert not any(line.startswith("executing") for line in printed)
    assert {locale: path.read_bytes() for locale, path in paths.items()} == first

    make_project(tmp_path, TEMPLATE.replace("lives on a worker", "lives on a remote worker"))
    printed.clear()
    assert translate(project, [LESSON], out=printed.append) == 0
    assert _states(printed) == {"en": "kept (code unchanged)", "hi": "kept (code unchanged)"}
    english = nbformat.read(paths["en"], as_version=4)
    assert "a remote worker" in english.cells[0].source
    assert outputs.stdout_of(english.cells[2]).endswith("loss=0.250\n")

    # Building without executing keeps the record too, so nothing runs afterwards.
    make_project(tmp_path, TEMPLATE.replace("lives on a worker", "lives on a far worker"))
    translate(project, [LESSON], execute=False, out=lambda _line: None)
    assert freshness.recorded(nbformat.read(paths["en"], as_version=4)) == recorded
    printed.clear()
    assert translate(project, [LESSON], out=printed.append) == 0
    assert _states(printed) == {"en": "kept (code unchanged)", "hi": "kept (code unchanged)"}

    make_project(tmp_path, TEMPLATE.replace("range(4)", "range(5)"))
    printed.clear()
    assert translate(project, [LESSON], out=printed.append) == 0
    assert _states(printed) == {"en": "executed", "hi": "executed"}
    english = nbformat.read(paths["en"], as_version=4)
    assert outputs.stdout_of(english.cells[2]).endswith("loss=0.200\n")


def test_the_digest_follows_the_package_code_and_its_catalogues(tmp_path: Path) -> None:
    """A Hindi notebook prints the library's Hindi errors, so a changed catalogue re-executes."""
    project = Project(tmp_path)
    catalogue = tmp_path / "federated" / "locales" / "hi" / "LC_MESSAGES" / "errors.po"
    catalogue.parent.mkdir(parents=True)
    (tmp_path / "federated" / "core.py").write_text("X = 1\n", "utf-8")
    catalogue.write_text('msgid "a"\nmsgstr "क"\n', "utf-8")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    first, english = (freshness.digest(project, notebook, lang) for lang in ("hi", "en"))
    catalogue.write_text('msgid "a"\nmsgstr "ख"\n', "utf-8")
    second = freshness.digest(project, notebook, "hi")
    assert freshness.digest(project, notebook, "en") == english  # Hindi text only
    (tmp_path / "federated" / "core.py").write_text("X = 2\n", "utf-8")
    assert len({first, second, freshness.digest(project, notebook, "hi")}) == 3


def test_a_long_previous_msgid_survives_being_read_back(tmp_path: Path) -> None:
    project = translated_project(tmp_path)
    old = next(key for key in HINDI if key[0].startswith("A pointer"))[0]
    longer = old.replace("a worker.", "a worker, which may be a phone far away.")
    make_project(tmp_path, TEMPLATE.replace(old, longer))
    translate(project, [LESSON], execute=False, out=lambda _line: None)
    path = project.catalog(LESSON, "hi")
    # written as gettext writes a msgid: the quoted strings are never broken
    written = path.read_text("utf-8")
    assert '#| msgid ""\n#| "A pointer refers to a tensor that lives on a worker.\\n"' in written
    assert '\n#| "It is moved with' in written
    assert msgfmt.problems([path], project) == []
    assert catalogs.read(path).get(longer).previous_id == [old]
    before = path.read_bytes()
    translate(project, [LESSON], execute=False, out=lambda _line: None)
    assert path.read_bytes() == before


def test_a_previous_msgid_written_by_gettext_tools_is_read(tmp_path: Path) -> None:
    path = tmp_path / "x.po"
    path.write_text(
        '#, fuzzy\n#| msgid ""\n#| "Two \\"quoted\\" words,\\n"\n#| "and more."\n'
        'msgid "Two words."\nmsgstr "दो शब्द।"\n',
        "utf-8",
    )
    message = catalogs.read(path).get("Two words.")
    assert message.previous_id == ['Two "quoted" words,\nand more.']
    assert message.user_comments == []


def test_a_repeated_message_is_one_entry_with_every_location(tmp_path: Path) -> None:
    template = TEMPLATE.replace("losses = [", "# print one loss per step\nlosses = [")
    sources = load(make_project(tmp_path, template), LESSON)
    entry = sources.pot().get("print one loss per step", context=comments.CONTEXT)
    path = "notebooks/templates/01_demo.md"
    assert entry.locations == [(path, 20), (path, 26)]
    assert len(sources.messages) == 6 and len(sources.occurrences) == 7


# --- saved widget state ----------------------------------------------------------------------


def _model(name: str, **state: object) -> dict:
    return {
        "model_name": name,
        "model_module": "@jupyter-widgets/controls",
        "model_module_version": "2.0.0",
        "state": {"_model_name": name, **state},
    }


def executed_with_widgets() -> nbformat.NotebookNode:
    """What nbclient leaves: random ids, and the state of a widget no output shows."""
    view = {"model_id": "f00d", "version_major": 2, "version_minor": 0}
    output = nbformat.v4.new_output(
        "display_data", data={"text/plain": "VBox()", widget_state.VIEW: view}
    )
    cell = nbformat.v4.new_code_cell("box", id="cell-000", execution_count=1, outputs=[output])
    notebook = nbformat.v4.new_notebook(cells=[cell])
    notebook.metadata["widgets"] = {
        widget_state.STATE: {
            "state": {
                "dead": _model("HTMLModel", value="thrown away", layout="IPY_MODEL_beef"),
                "beef": _model("LayoutModel"),
                "cafe": _model("HTMLModel", value="kept", layout="IPY_MODEL_beef"),
                "f00d": _model("VBoxModel", children=["IPY_MODEL_cafe"], layout="IPY_MODEL_beef"),
            },
            "version_major": 2,
            "version_minor": 0,
        }
    }
    return nbformat.from_dict(notebook)


def test_widget_state_keeps_what_outputs_show_renamed_in_the_order_shown() -> None:
    stable = widget_state.stabilized(executed_with_widgets())
    one, two, three = (widget_state.new_id(n) for n in (1, 2, 3))
    models = widget_state.models(stable)
    assert list(models) == [one, two, three]  # the box, its child, their layout
    assert models[one]["state"]["children"] == [f"IPY_MODEL_{two}"]
    assert models[two]["state"] == {
        "_model_name": "HTMLModel",
        "value": "kept",
        "layout": f"IPY_MODEL_{three}",
    }
    assert stable.cells[0].outputs[0].data[widget_state.VIEW]["model_id"] == one
    assert "thrown away" not in nbformat.writes(stable)
    assert widget_state.stabilized(stable) == stable
    assert widget_state.unsaved(stable) == []


def test_a_widget_output_without_saved_state_is_reported(tmp_path: Path) -> None:
    project = translated_project(tmp_path)
    mark_executed(project)
    path = project.notebook(LESSON, "en")
    notebook = nbformat.read(path, as_version=4)
    notebook.cells[1].outputs = executed_with_widgets().cells[0].outputs
    build.write(notebook, path)
    assert check_project(project).problems == [
        "notebooks/en/01_demo.ipynb: widgets of code cells 1 have no saved state;"
        " run `make translate`"
    ]
    notebook.metadata["widgets"] = executed_with_widgets().metadata["widgets"]
    build.write(notebook, path)
    assert check_project(project).ok  # the saved state is no part of the stale check


def test_outputs_bring_the_widget_state_along_and_reuse_keeps_it() -> None:
    executed = executed_with_widgets()
    built = copy.deepcopy(executed)
    built.cells[0].outputs, built.cells[0].execution_count = [], None
    built.metadata.pop("widgets")
    result = outputs.with_outputs(built, executed)
    assert list(widget_state.models(result)) == [widget_state.new_id(n) for n in (1, 2, 3)]
    assert outputs.reuse_outputs(built, result) == result


def test_each_language_has_a_kernel_that_fixes_threads_and_names_the_language(
    tmp_path: Path,
) -> None:
    """The kernel JupyterLab starts for a lesson is the one the tooling executes with."""
    from tools.execute import execute

    written = kernel.install(tmp_path)
    assert sorted(path.parent.name for path in written) == ["federated-en", "federated-hi"]
    assert kernel.install(tmp_path) == []  # nothing changed, nothing written
    for locale in ("en", "hi"):
        spec = kernel.spec(locale)
        installed = kernel.kernels_dir() / kernel.name(locale) / "kernel.json"
        assert json.loads(installed.read_text("utf-8")) == spec
        assert spec["env"]["OMP_NUM_THREADS"] == "1"
        assert spec["env"]["FEDERATED_LANG"] == locale
        # the same vector instructions on every x86-64 machine (an AVX-512 one too)
        assert spec["env"]["ATEN_CPU_CAPABILITY"] == "avx2"
        assert spec["env"]["ONEDNN_MAX_CPU_ISA"] == "AVX2"
        assert spec["env"]["MKL_CBWR"] == "AVX2"
        assert spec["argv"][0] == "python"  # jupyter_client puts the running interpreter
    notebook = nbformat.v4.new_notebook(metadata=build.notebook_metadata(LESSON, "hi"))
    notebook.cells.append(
        nbformat.v4.new_code_cell(
            "import os, torch\nprint(torch.get_num_threads(), os.environ['FEDERATED_LANG'],"
            " os.environ['PYTHONHASHSEED'], torch.backends.cpu.get_cpu_capability())"
        )
    )
    result = execute(notebook, tmp_path / "out.ipynb", tmp_path)
    threads, language, seed, capability = outputs.stdout_of(result.cells[0]).split()
    assert (threads, language, seed) == ("1", "hi", "0")
    if _has_avx2():  # an AVX-512 machine, too, runs the lesson on AVX2 kernels
        assert capability == "AVX2"


def _has_avx2() -> bool:
    try:
        return " avx2" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def test_consecutive_prints_are_saved_as_one_output() -> None:
    """How the kernel flushed its output must not change the committed file."""
    stream = nbformat.v4.new_output
    chunks = [
        stream("stream", name="stdout", text="a\n"),
        stream("stream", name="stdout", text=["b\n", "c"]),
        stream("stream", name="stderr", text="warn\n"),
        stream("stream", name="stdout", text="d\n"),
    ]
    merged = outputs.merged_streams(chunks)
    assert [(o.name, o.text) for o in merged] == [
        ("stdout", "a\nb\nc"),
        ("stderr", "warn\n"),
        ("stdout", "d\n"),
    ]


WIDGET_TEMPLATE = """\
# Widgets

```python
import ipywidgets as widgets

box = widgets.VBox([widgets.HTML("<b>kept</b>"), widgets.IntProgress(value=3, max=5)])
widgets.HTML("thrown away")
box
```
"""


def test_translate_saves_a_stable_widget_state_the_check_accepts(tmp_path: Path) -> None:
    """End to end with papermill: the state survives, minimal and the same on a rerun."""
    project = make_project(tmp_path, WIDGET_TEMPLATE)
    translate(project, [LESSON], execute=False, out=lambda _line: None)
    fill_catalog(project, {("# Widgets", None): "# विजेट"})
    assert translate(project, [LESSON], out=lambda _line: None) == 0
    path = project.notebook(LESSON, "hi")
    notebook = nbformat.read(path, as_version=4)
    view = notebook.cells[1].outputs[0].data
    assert view[widget_state.VIEW]["model_id"] == widget_state.new_id(1)
    assert view["text/plain"].startswith("VBox(children=(HTML(value='<b>kept</b>')")
    models = widget_state.models(notebook)
    assert [m["model_name"] for m in models.values()].count("VBoxModel") == 1
    assert "thrown away" not in str(models)
    assert check_project(project).ok
    before = path.read_bytes()
    assert translate(project, [LESSON], out=lambda _line: None) == 0
    assert path.read_bytes() == before


# --- the widgets' labels ---------------------------------------------------------------------


LABELS = """\
def labels(t):
    # TRANSLATORS: the dashboard's title
    title = t.gettext("Loss per worker")
    return title, t.gettext("round {round}/{rounds}")
"""


def widget_project(tmp_path: Path) -> Project:
    project = translated_project(tmp_path)
    mark_executed(project)
    project.ui_dir.mkdir(parents=True)
    (project.ui_dir / "labels.py").write_text(LABELS, "utf-8")
    return project


def fill_labels(project: Project, strings: dict[str, str]) -> None:
    path = project.ui_catalog("hi")
    catalog = catalogs.read(path)
    for msgid, string in strings.items():
        catalog.get(msgid).string = string
    catalogs.write(catalog, path)


def test_translate_extracts_the_widget_labels_into_their_catalogue(tmp_path: Path) -> None:
    project = widget_project(tmp_path)
    printed: list[str] = []
    translate(project, [LESSON], execute=False, out=printed.append)
    assert "wrote locales/hi/LC_MESSAGES/widgets.po" in printed
    assert printed[-1].splitlines()[-1].split() == ["widgets", "hi", "0", "0", "2", "(labels)"]
    entry = catalogs.read(project.ui_catalog("hi")).get("Loss per worker")
    assert entry.auto_comments == ["the dashboard's title"]
    assert entry.locations == [("federated/widgets/labels.py", 3)]
    before = project.ui_catalog("hi").read_bytes()
    translate(project, [LESSON], execute=False, out=lambda _line: None)
    assert project.ui_catalog("hi").read_bytes() == before


def test_check_reports_widget_labels_missing_broken_or_off_glossary(tmp_path: Path) -> None:
    project = widget_project(tmp_path)
    problems = check_project(project).problems
    assert problems == ["locales/hi/LC_MESSAGES/widgets.po: missing (2 widget labels untranslated)"]
    translate(project, [LESSON], execute=False, out=lambda _line: None)
    (project.root / "locales" / "hi" / "glossary.tsv").write_text(
        "english\thindi\tavoid\nworker\tवर्कर\tकार्यकर्ता\n", "utf-8"
    )
    fill_labels(
        project, {"Loss per worker": "हर कार्यकर्ता का लॉस", "round {round}/{rounds}": "राउंड {round}"}
    )
    problems = [p for p in check_project(project).problems if "widgets.po" in p]
    # the translator edited locales/: the package's copy is behind until `make translate`
    assert problems.pop(0) == (
        "federated/locales/hi/LC_MESSAGES/widgets.po: differs from"
        " locales/hi/LC_MESSAGES/widgets.po (the package ships it); run `make translate`"
    )
    assert len(problems) == 3
    assert "federated/widgets/labels.py:3: glossary: 'worker' must be translated as" in problems[0]
    assert "glossary: 'कार्यकर्ता' is to be avoided" in problems[1]
    assert (
        "labels.py:4: placeholders differ: ['{rounds}', '{round}'] vs ['{round}']" in (problems[2])
    )
    fill_labels(
        project,
        {"Loss per worker": "हर वर्कर का लॉस", "round {round}/{rounds}": "राउंड {round}/{rounds}"},
    )
    translate(project, [LESSON], execute=False, out=lambda _line: None)
    assert project.shipped_catalog("widgets", "hi").read_bytes() == (
        project.ui_catalog("hi").read_bytes()
    )
    report = check_project(project)
    assert [p for p in report.problems if "widgets.po" in p] == []
    assert report.messages == 6 + 2
    fewer = LABELS.replace(', t.gettext("round {round}/{rounds}")', "")
    (project.ui_dir / "labels.py").write_text(fewer, "utf-8")
    problems = [p for p in check_project(project).problems if "widgets.po" in p]
    assert len(problems) == 1 and "not in the widget code any more" in problems[0]


def test_make_test_stages_are_timed_and_summed_up(tmp_path: Path, capsys) -> None:
    from tools import stage

    log = tmp_path / "stages.txt"
    assert stage.run("lint", ["true"], log) == 0
    assert stage.run("pytest", ["false"], log) == 1
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("== lint: ") and printed[0].endswith(" s (ok)")
    assert printed[1].startswith("== pytest: ") and printed[1].endswith(" s (FAILED)")
    summary = stage.summary(log).splitlines()
    assert summary[0] == "== stage times"
    assert [line.split(":")[0].strip() for line in summary[1:]] == ["lint", "pytest"]
    assert not log.exists()  # the next `make test` starts a new list
