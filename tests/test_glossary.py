"""The glossary rules i18n-check enforces, on small glossaries and whole tmp projects.

Each rule has a name, and a failing check prints it beside the message it found.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_tools import HINDI, LESSON, TEMPLATE, fill_catalog, make_project, mark_executed
from tools import comments, glossary, printed
from tools.check import check_project
from tools.paths import Project
from tools.translate import translate

TERMS = [
    glossary.Term("worker", "वर्कर", ("कार्यकर्ता",), kind="loan", gender="m"),
    glossary.Term("federated learning", "फ़ेडरेटेड लर्निंग", ("फेडरेटेड लर्निंग",), "loan", "f"),
    glossary.Term("training", "प्रशिक्षण", ("ट्रेनिंग",), kind="hindi"),
    glossary.Term("weight", "भार", ("वेट",), kind="hindi"),
    glossary.Term("weighted average", "भारित औसत", (), kind="hindi"),
    glossary.Term("secure aggregation", "सुरक्षित एकत्रीकरण", (), kind="hindi"),
    glossary.Term("aggregation", "एकत्रीकरण", ("एग्रीगेशन",), kind="hindi"),
    glossary.Term("round", "राउंड", ("दौर",), kind="loan", gender="m"),
    glossary.Term("error", "एरर", ("त्रुटि",), kind="loan", gender="f"),
    glossary.Term("privacy", "गोपनीयता", ("प्राइवेसी",), kind="hindi"),
    glossary.Term("differential privacy", "डिफ़रेंशियल प्राइवेसी", ("डिफ़रेंशियल गोपनीयता",), "loan", "f"),
    glossary.Term("in-place", "इन-प्लेस", ("इनप्लेस",), kind="loan", gender="-"),
    glossary.Term("scikit-learn", "scikit-learn", ("साइकिट-लर्न",), kind="name"),
]


def rules(found: list[glossary.Problem]) -> list[str]:
    return [problem.rule for problem in found]


# --- one message ---------------------------------------------------------------------------


def test_the_term_is_required_and_inflection_counts() -> None:
    assert glossary.problems(TERMS, "Two workers.", "दो वर्करों पर।") == []
    assert rules(glossary.problems(TERMS, "A worker.", "एक मशीन।")) == ["term"]
    # only in inline code, or inside another word: not a use of the term
    assert glossary.problems(TERMS, "Call `worker.send()`; coworkers.", "कॉल करें") == []


def test_a_variant_is_found_as_a_whole_word_even_inflected() -> None:
    found = glossary.problems(TERMS, "A worker.", "एक कार्यकर्ता वर्कर।")
    assert [str(p) for p in found] == [
        "glossary: 'कार्यकर्ता' is to be avoided; write 'वर्कर' for 'worker' [rule variant]"
    ]
    assert rules(glossary.problems(TERMS, "Many rounds.", "कई राउंड, कई दौरों में।")) == ["variant"]
    # दौरान ("during") is another word, not the variant दौर of "round"
    assert glossary.problems(TERMS, "During a round.", "एक राउंड के दौरान।") == []


def test_a_longer_term_hides_the_shorter_one_inside_it() -> None:
    english = "That is what differential privacy provides."
    assert glossary.problems(TERMS, english, "यही डिफ़रेंशियल प्राइवेसी देती है।") == []
    assert rules(glossary.problems(TERMS, english, "यही डिफ़रेंशियल गोपनीयता देती है।")) == [
        "term",
        "variant",
    ]


def test_a_hyphenated_term_is_one_word() -> None:
    assert rules(glossary.problems(TERMS, "An in-place operation.", "एक ऑपरेशन।")) == ["term"]
    assert glossary.problems(TERMS, "An in-place operation.", "इन-प्लेस ऑपरेशन।") == []
    # "in place" as an idiom ("with the gradient in place") is not the term
    assert glossary.problems(TERMS, "With the gradient in place.", "ग्रेडिएंट तैयार हो।") == []


def test_the_nukta_matches_however_it_was_typed() -> None:
    decomposed = "\u092b\u093c\u0947\u0921\u0930\u0947\u091f\u0947\u0921 लर्निंग"
    precomposed = "\u095e\u0947\u0921\u0930\u0947\u091f\u0947\u0921 लर्निंग"
    assert glossary.problems(TERMS, "Federated learning.", precomposed) == []
    assert glossary.problems(TERMS, "Federated learning.", decomposed) == []


def test_a_gloss_in_a_heading_is_refused() -> None:
    found = glossary.problems(TERMS, "## Training", "## प्रशिक्षण (training)")
    assert [str(p) for p in found] == [
        "glossary: 'प्रशिक्षण (training)': no English gloss in a title or heading"
        " [rule gloss-in-heading]"
    ]


def test_a_gloss_on_a_transliteration_is_refused() -> None:
    found = glossary.problems(TERMS, "Two workers.", "दो वर्करों (workers) पर।")
    assert [str(p) for p in found] == [
        "glossary: 'वर्करों (workers)': 'वर्कर' is the English word in Devanagari;"
        " drop the gloss [rule gloss-on-loanword]"
    ]


def test_a_gloss_for_a_word_the_glossary_lacks_is_refused() -> None:
    found = glossary.problems(TERMS, "A regression.", "एक रिग्रेशन (regression)।")
    assert rules(found) == ["gloss-unknown"]
    # a Latin name or code in parentheses after Latin text is no gloss
    assert glossary.problems(TERMS, "With scikit-learn (v1).", "scikit-learn (v1) से।") == []


def test_library_names_stay_in_latin_script() -> None:
    found = glossary.problems(TERMS, "scikit-learn ships digits.", "साइकिट-लर्न में अंक हैं।")
    assert rules(found) == ["name-in-latin", "variant"]
    assert glossary.problems(TERMS, "scikit-learn ships digits.", "scikit-learn में अंक हैं।") == []


def test_a_loanword_agrees_with_its_recorded_gender() -> None:
    assert glossary.problems(TERMS, "An error.", "एक नई एरर आती है।") == []
    found = glossary.problems(TERMS, "An error.", "बॉब का एरर।")
    assert [str(p) for p in found] == ["glossary: 'एरर' is feminine: not 'का एरर' [rule gender]"]
    assert rules(glossary.problems(TERMS, "The worker.", "पहली वर्कर।")) == ["gender"]


def test_an_english_sentence_left_in_the_hindi_is_found() -> None:
    found = glossary.problems(TERMS, "Read this.", "इसे पढ़िए: this is not translated yet.")
    assert rules(found) == ["english-left"]
    # code, links, glosses and library names are not English prose
    hindi = "`make lab and make test` चलाइए, [the basic tools here](a.md) और scikit-learn।"
    assert glossary.problems(TERMS, "Run `make lab and make test`, [x](a.md).", hindi) == []


# --- a whole lesson ------------------------------------------------------------------------


def lesson(messages: list[tuple[str, str]]) -> list[tuple[int, str]]:
    return [(index, str(problem)) for index, problem in glossary.lesson_problems(TERMS, messages)]


def test_the_first_use_outside_headings_carries_the_gloss() -> None:
    assert lesson(
        [
            ("# Training", "# प्रशिक्षण"),
            ("Training a worker.", "वर्कर का प्रशिक्षण।"),
        ]
    ) == [
        (
            1,
            "glossary: first use of 'training' in this lesson must read"
            " 'प्रशिक्षण (training)' [rule first-gloss]",
        )
    ]
    assert lesson([("# Training", "# प्रशिक्षण"), ("Training.", "प्रशिक्षण (training)।")]) == []


def test_a_second_gloss_in_a_lesson_is_refused() -> None:
    assert lesson(
        [
            ("Training.", "प्रशिक्षण (training)।"),
            ("Training again.", "फिर से प्रशिक्षण (training)।"),
        ]
    ) == [
        (
            1,
            "glossary: 'training' is glossed a second time in this lesson"
            " (first in message 1); once is enough [rule second-gloss]",
        )
    ]


def test_a_longer_gloss_introduces_the_term_it_ends_with() -> None:
    assert (
        lesson(
            [
                ("Secure aggregation.", "सुरक्षित एकत्रीकरण (secure aggregation)।"),
                ("Aggregation.", "एकत्रीकरण।"),
            ]
        )
        == []
    )
    assert lesson(
        [
            ("Secure aggregation.", "सुरक्षित एकत्रीकरण (secure aggregation)।"),
            ("Aggregation.", "एकत्रीकरण (aggregation)।"),
        ]
    )[0][1].startswith("glossary: 'aggregation' is glossed a second time")


def test_a_loanword_needs_no_gloss_and_an_untranslated_message_is_skipped() -> None:
    messages = [("Workers.", "वर्कर।"), ("Training.", None), ("Training.", "प्रशिक्षण (training)।")]
    assert lesson(messages) == []


# --- the file and i18n-check ---------------------------------------------------------------


def test_the_file_records_kind_gender_and_note(tmp_path: Path) -> None:
    path = tmp_path / "glossary.tsv"
    path.write_text(
        "english\thindi\tavoid\tkind\tgender\tnote\n"
        "# a comment\n"
        "error\tएरर\tत्रुटि\tloan\tf\tan exception\n"
        "weight\tभार\tवेट\n",
        "utf-8",
    )
    assert glossary.load(path) == [
        glossary.Term("error", "एरर", ("त्रुटि",), "loan", "f", "an exception"),
        glossary.Term("weight", "भार", ("वेट",), "hindi", "", ""),
    ]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("cell\tसेल\t\tloan\t\t", "a loanword needs its gender"),
        ("cell\tसेल\t\tborrowed\tm\t", "kind must be one of hindi, loan, name"),
        ("PyTorch\tपाइटॉर्च\t\tname\t\t", "stays in Latin script"),
        ("cell\t\t\t\t\t", "need english and hindi columns"),
    ],
)
def test_a_malformed_row_names_its_line(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "glossary.tsv"
    path.write_text(f"english\thindi\tavoid\tkind\tgender\tnote\n{row}\n", "utf-8")
    with pytest.raises(ValueError, match=f"glossary.tsv:2: .*{message}"):
        glossary.load(path)


def checked_project(tmp_path: Path, strings: dict) -> list[str]:
    project = make_project(tmp_path)
    translate(project, [LESSON], execute=False, out=lambda _line: None)
    fill_catalog(project, strings)
    translate(project, [LESSON], execute=False, out=lambda _line: None)
    mark_executed(project)
    project.glossary("hi").write_text(
        "english\thindi\tavoid\tkind\tgender\tnote\n"
        "worker\tवर्कर\tकार्यकर्ता\tloan\tm\t\n"
        "pointer\tपॉइंटर\t\tloan\tm\t\n"
        "tensor\tटेंसर\t\tloan\tm\t\n"
        "demo\tनमूना\t\thindi\t\t\n"
        "loss\tहानि\t\thindi\t\t\n",
        "utf-8",
    )
    return check_project(Project(tmp_path)).problems


HEADING = ("# A demo of pointers", None)
PARAGRAPH = next(key for key in HINDI if key[0].startswith("A pointer"))
CURVE = ("make a toy loss curve", comments.CONTEXT)
STEP = ("print one loss per step", comments.CONTEXT)
LABEL = ("loss={loss:.3f}", printed.CONTEXT)
#: the demo lesson written by the rules: no gloss in the heading, one for "loss"
FOLLOWING = {
    **HINDI,
    HEADING: "# पॉइंटर का एक नमूना",
    CURVE: "हानि (loss) का एक छोटा वक्र बनाइए",
    STEP: "हर क़दम की हानि छापिए",
    LABEL: "हानि={loss:.3f}",
}


def test_check_passes_when_the_lesson_follows_the_rules(tmp_path: Path) -> None:
    assert checked_project(tmp_path, FOLLOWING) == []


@pytest.mark.parametrize(
    ("changes", "rule", "message"),
    [
        ({HEADING: "# पॉइंटर का एक नमूना (demo)"}, "gloss-in-heading", HEADING),
        ({STEP: "हर क़दम की हानि (loss) छापिए"}, "second-gloss", STEP),
        (
            {PARAGRAPH: HINDI[PARAGRAPH].replace("पॉइंटर", "पॉइंटर (pointer)", 1)},
            "gloss-on-loanword",
            PARAGRAPH,
        ),
        ({PARAGRAPH: HINDI[PARAGRAPH].replace("वर्कर", "कार्यकर्ता")}, "variant", PARAGRAPH),
    ],
)
def test_check_names_the_rule_and_the_message(
    tmp_path: Path, changes: dict, rule: str, message: tuple
) -> None:
    problems = checked_project(tmp_path, {**FOLLOWING, **changes})
    assert len(problems) == 1 + (rule == "variant"), problems  # a variant also lacks the term
    found = next(p for p in problems if f" [rule {rule}]: " in p)
    line = (
        TEMPLATE.split("\n").index(
            next(row for row in TEMPLATE.split("\n") if message[0].split("\n")[0] in row)
        )
        + 1
    )
    assert found.startswith("locales/hi/LC_MESSAGES/01_demo.po:")
    assert f" notebooks/templates/01_demo.md:{line}: glossary: " in found
    flat = " ".join(message[0].split())
    assert found.endswith(repr(flat if len(flat) <= 60 else flat[:60] + "…"))


def test_the_committed_glossary_is_well_formed() -> None:
    terms = glossary.load(Path(__file__).resolve().parent.parent / "locales/hi/glossary.tsv")
    english = [term.english for term in terms]
    assert len(set(english)) == len(english)
    by_english = {term.english: term for term in terms}
    for word in (
        "error",
        "shape",
        "dtype",
        "chain",
        "target",
        "feature",
        "label",
        "shuffle",
        "in-place",
        "random",
        "request",
        "weighted average",
        "fixed precision",
        "secret share",
        "differential privacy",
        "privacy budget",
        "noise",
        "clipping",
        "plan",
        "comparison",
        "encrypted inference",
    ):
        assert word in by_english, word
    assert by_english["secret share"].hindi == glossary.normalize("गुप्त शेयर")
    assert by_english["fixed precision"].note
    for hindi, gender in [("सेल", "m"), ("लेयर", "f"), ("कॉल", "f"), ("नोटबुक", "f"), ("एरर", "f")]:
        assert [t.gender for t in terms if t.hindi == hindi] == [gender], hindi
    for term in terms:
        assert all(term.hindi not in variant for variant in term.avoid), term
