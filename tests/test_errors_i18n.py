"""The errors a learner meets speak the learner's language (issue 16).

Every `tr("…")` message of the package has a Hindi translation in the `errors` catalogue;
a real error from a real call comes in Hindi under `FEDERATED_LANG=hi` and in English
otherwise, keeping its class and its code; an error from a worker server is translated
on the learner's side.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import federated as sy
from federated import language
from federated.errors import PrivateDataError, WorkerMismatchError
from federated.language import VARIABLE, from_wire, to_wire, tr
from federated.protocol import WorkerRestartedError
from tools import catalog as catalogs
from tools import ui
from tools.check import check_project
from tools.paths import DEFAULT_ROOT, Project

PROJECT = Project(DEFAULT_ROOT)
DEVANAGARI = re.compile(r"[\u0900-\u097f]")
#: the code a message quotes, and the fields the code fills in
CODE = re.compile(r"`[^`]+`")
FIELD = re.compile(r"\{[a-z_][a-z0-9_]*\}")


@pytest.fixture(autouse=True)
def _no_language_chosen(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(VARIABLE, raising=False)
    language.use(None)
    yield
    language.use(None)


def _messages() -> list[ui.Label]:
    return ui.unique(ui.labels(PROJECT, ui.ERRORS))


def test_every_error_message_has_a_hindi_translation_with_its_fields_and_code() -> None:
    found = _messages()
    assert len(found) > 200  # every raise site of the package, not a sample
    catalog = catalogs.read(ui.ERRORS.catalog(PROJECT, "hi"))
    for message in found:
        entry = catalog.get(message.msgid)
        where = f"{message.path}:{message.line}"
        assert entry is not None and entry.string, f"{where}: no Hindi for {message.msgid!r}"
        assert "fuzzy" not in entry.flags, where
        assert sorted(FIELD.findall(entry.string)) == sorted(FIELD.findall(message.msgid)), where
        assert set(CODE.findall(message.msgid)) <= set(CODE.findall(entry.string)), where
        assert DEVANAGARI.search(entry.string), where


def test_no_error_of_the_package_is_raised_with_an_untranslated_message() -> None:
    """A literal or f-string handed straight to an exception would reach a Hindi
    learner in English: every message goes through `tr(...)` (or is built by it)."""
    untranslated = []
    for path in sorted((DEFAULT_ROOT / "federated").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
                first = node.exc.args[0]
                if isinstance(first, ast.JoinedStr | ast.BinOp) or (
                    isinstance(first, ast.Constant) and isinstance(first.value, str)
                ):
                    untranslated.append(f"{path.name}:{node.lineno}: {ast.unparse(first)[:60]}")
    assert untranslated == []


def test_the_package_ships_the_catalogue_translators_edit() -> None:
    shipped = PROJECT.shipped_catalog("errors", "hi")
    assert shipped.read_bytes() == ui.ERRORS.catalog(PROJECT, "hi").read_bytes()
    assert language.catalogue_path("hi", language.ERRORS) == shipped


def _private_pointer(worker_id: str) -> torch.Tensor:
    worker = sy.VirtualWorker(sy.TorchHook(torch), id=worker_id)
    return worker.load(torch.tensor([1.0, 2.0, 3.0]), private=True)


def test_fetching_private_data_fails_in_hindi_under_a_hindi_kernel(monkeypatch) -> None:
    monkeypatch.setenv(VARIABLE, "hi_IN.UTF-8")
    pointer = _private_pointer("asha")
    with pytest.raises(PrivateDataError) as caught:
        (pointer * 2).get()
    text = str(caught.value)
    assert DEVANAGARI.search(text) and "निजी डेटा" in text
    assert "asha" in text and "`model.get()`" in text  # names and code unchanged
    assert "private data" not in text


def test_the_same_error_is_english_without_a_choice_or_with_en(monkeypatch) -> None:
    pointer = _private_pointer("asha")
    with pytest.raises(PrivateDataError, match="computed from private data"):
        (pointer * 2).get()
    monkeypatch.setenv(VARIABLE, "en")
    with pytest.raises(PrivateDataError) as caught:
        (pointer * 2).get()
    assert not DEVANAGARI.search(str(caught.value))


def test_mixing_workers_explains_itself_in_hindi_and_use_overrides_the_kernel(
    monkeypatch,
) -> None:
    hook = sy.TorchHook(torch)
    bob, alice = sy.VirtualWorker(hook, id="bob"), sy.VirtualWorker(hook, id="alice")
    x, y = torch.ones(2).send(bob), torch.ones(2).send(alice)
    language.use("hi")
    with pytest.raises(WorkerMismatchError) as caught:
        x + y
    text = str(caught.value)
    assert "वर्कर" in text and "`x.move(alice)`" in text and "bob" in text
    monkeypatch.setenv(VARIABLE, "hi")
    language.use("en")  # an explicit choice beats the kernel's variable
    with pytest.raises(WorkerMismatchError, match="mixes a pointer to bob"):
        x + y


def test_a_stale_pointer_names_what_happened_in_hindi() -> None:
    bob = sy.VirtualWorker(sy.TorchHook(torch), id="bob")
    pointer = torch.ones(2).send(bob)
    pointer.get()
    language.use("hi")
    with pytest.raises(sy.errors.StalePointerError) as caught:
        pointer + 1
    shown_repr, sentence = str(caught.value).split(" fetched) ", 1)  # the repr is code
    assert shown_repr.startswith("(Pointer bob:")
    assert "वापस लाया जा चुका है" in sentence and "fetched" not in sentence


def test_a_template_is_translated_before_it_is_filled() -> None:
    language.use("hi")
    text = tr(
        "{owner} holds no object {obj_id}: it was fetched, moved or freed already. "
        "If the call that did this returned a new pointer or the value in its place, "
        "use that.",
        owner="bob",
        obj_id=7,
    )
    assert text.startswith("bob के पास कोई ऑब्जेक्ट 7 नहीं है")
    assert text.fields == {"owner": "bob", "obj_id": "7"}
    # an unknown message stays English, filled in
    assert tr("no such message {n}", n=3) == "no such message 3"


def test_a_translated_error_survives_copying_and_pickling() -> None:
    import copy
    import pickle

    language.use("hi")
    error = PrivateDataError(
        tr(
            "{owner} holds no object {obj_id}: it was fetched, moved or freed "
            "already. If the call that did this returned a new pointer or the value in its "
            "place, use that.",
            owner="bob",
            obj_id=7,
        )
    )
    for again in (copy.deepcopy(error), pickle.loads(pickle.dumps(error))):
        assert str(again) == str(error) and again.args[0].fields == {"owner": "bob", "obj_id": "7"}


def test_a_server_error_is_shown_in_the_learners_language() -> None:
    """The server formats in its own language and sends template + fields as JSON."""
    error = PrivateDataError(
        tr(
            "{owner} holds no object {obj_id}: it was fetched, moved or freed already. "
            "If the call that did this returned a new pointer or the value in its place, "
            "use that.",
            owner="bob",
            obj_id=7,
        )
    )
    problem = json.loads(
        json.dumps({"type": "ObjectNotFoundError", "message": str(error), **to_wire(error)})
    )
    assert from_wire(problem).startswith("bob holds no object 7")
    language.use("hi")
    assert from_wire(problem).startswith("bob के पास कोई ऑब्जेक्ट 7 नहीं है")


@pytest.mark.parametrize(
    ("msgid", "fields", "shown"),
    [
        ("{x.__class__.__mro__}", {"x": "a"}, "{x.__class__.__mro__}"),  # no attribute access
        ("{x:>999999}", {"x": "a"}, "{x:>999999}"),  # no format spec
        ("{a}", {"a": 1}, "plain"),  # fields are strings
        ("{a}", {"a.b": "x"}, "plain"),  # named like a field
        (["not", "text"], {}, "plain"),
    ],
)
def test_a_hostile_server_template_fills_in_nothing_but_its_fields(msgid, fields, shown) -> None:
    """A server's reply is untrusted: `from_wire` only replaces `{name}` by a string."""
    assert from_wire({"message": "plain", "msgid": msgid, "fields": fields}) == shown


def test_i18n_check_fails_on_an_untranslated_error(tmp_path: Path) -> None:
    project = Project(tmp_path)
    package = tmp_path / "federated"
    package.mkdir()
    (package / "errors_here.py").write_text(
        "from federated.language import tr\n\n"
        "def fail(name):\n"
        '    raise ValueError(tr("no worker {name}: send it first", name=name))\n',
        "utf-8",
    )
    problems = check_project(project, lessons=[]).problems
    assert problems == ["locales/hi/LC_MESSAGES/errors.po: missing (1 error messages untranslated)"]
    ui.update(project, "hi", ui.ERRORS)
    problems = check_project(project, lessons=[]).problems
    assert len(problems) == 1 and "errors_here.py:4" in problems[0], problems
    path = ui.ERRORS.catalog(project, "hi")
    catalog = catalogs.read(path)
    catalog.get("no worker {name}: send it first").string = "कोई वर्कर नहीं: पहले भेजें"
    catalogs.write(catalog, path)
    ui.ship(project, "hi", ui.ERRORS)
    problems = check_project(project, lessons=[]).problems
    assert len(problems) == 1 and "placeholders differ" in problems[0]


def test_an_error_raised_on_an_english_server_reaches_a_hindi_learner_in_hindi() -> None:
    """A real worker process, started in English; the learner's side chose Hindi."""
    (server,) = sy.WorkerProcess.group(["carol"], token="t")
    try:
        carol = sy.RemoteWorker(sy.TorchHook(torch), id="carol", port=server.port, token="t")
        language.use("hi")
        # an id no run of this server made: the server's own (English) message
        with pytest.raises(WorkerRestartedError) as caught:
            carol.fetch(424242)
        carol.close()
    finally:
        server.stop()
    assert str(caught.value).startswith("carol पर: ऑब्जेक्ट 424242 तब बना था जब वर्कर carol का सर्वर")
