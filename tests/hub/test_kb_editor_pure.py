"""The KB editor's pure parts: sources to and from YAML, entries as YAML the brain loads,
diffs, publish checks, validity, evaluation flags and the grouping of unanswered questions."""

from __future__ import annotations

import datetime as dt
import os
import socket

import pytest
import yaml
from flask import Flask

from assistant.kb import SHIPPED_KB, load_kb
from hub import kb_editor, kb_review, unanswered
from hub.models import KbChange


def test_a_source_survives_the_yaml_string_and_old_strings_keep_their_url() -> None:
    s = {"title": "Peraturan Polri", "regulation": "Perpol 7/2021", "url": "https://polri.go.id/x",
         "checked": "2026-11-30"}
    assert kb_editor.parse_source(kb_editor.format_source(s)) == s
    old = kb_editor.parse_source("SPKT Polri, layanan SKTLK (https://example.go.id/lap)", "2026-11-27")
    assert old == {"title": "SPKT Polri, layanan SKTLK", "regulation": "", "url": "https://example.go.id/lap",
                   "checked": "2026-11-27"}


def test_every_shipped_entry_round_trips_into_a_kb_the_loader_accepts(tmp_path) -> None:
    entries = kb_editor.read_folder(SHIPPED_KB)
    assert kb_editor.write_folder(entries, tmp_path, dt.date(2026, 12, 1)) == len(entries)
    again = load_kb(tmp_path)
    shipped = load_kb(SHIPPED_KB)
    assert set(again.entries) == set(shipped.entries)
    for entry_id, entry in shipped.entries.items():
        got = again.entries[entry_id]
        assert (got.answer, got.speech, got.questions, got.title) == (entry.answer, entry.speech,
                                                                     entry.questions, entry.title)
        assert got.checked == entry.checked


def test_checked_is_the_oldest_source_date_and_publishing_needs_one() -> None:
    data = kb_editor.read_folder(SHIPPED_KB)[0]
    data["sources"] = [{"title": "A", "regulation": "", "url": "", "checked": "2026-10-01"},
                       {"title": "B", "regulation": "", "url": "", "checked": "2026-11-01"}]
    assert yaml.safe_load(kb_editor.to_yaml(data))["checked"] == dt.date(2026, 10, 1)
    assert kb_editor.publish_problems(data) == []
    data["sources"][1]["checked"] = ""
    assert [p.field for p in kb_editor.publish_problems(data)] == ["sources[1].checked"]
    data["sources"] = []
    assert [p.field for p in kb_editor.publish_problems(data)] == ["sources"]


def test_validity_dates_keep_an_entry_out_of_force(tmp_path) -> None:
    data = {"valid_from": "2026-12-20", "valid_until": "2027-01-02"}
    assert not kb_editor.in_force(data, dt.date(2026, 12, 19))
    assert kb_editor.in_force(data, dt.date(2026, 12, 25))
    assert not kb_editor.in_force(data, dt.date(2027, 1, 3))
    assert kb_editor.in_force({"valid_from": "", "valid_until": ""}, dt.date(2030, 1, 1))


def test_the_diff_shows_only_what_changed() -> None:
    before = kb_editor.read_folder(SHIPPED_KB)[0]
    after = dict(before, speech={"id": "Kalimat baru.", "en": before["speech"]["en"]})
    lines = kb_editor.diff(before, after)
    added = [line for kind, line in lines if kind == "+"]
    removed = [line for kind, line in lines if kind == "-"]
    assert any("Kalimat baru." in line for line in added) and len(added) == 1 and len(removed) == 1
    assert kb_editor.diff(before, before) == []
    assert {kind for kind, _ in kb_editor.diff(before, None)} == {"@", "-"}


def test_form_problems_name_the_field() -> None:
    form = {"title_id": "x", "title_en": "x", "answer_id": "a", "answer_en": "", "speech_id": "s",
            "speech_en": "s", "questions": "q"}
    for entry_id, topic, want in (("Bad Id", "skck", "id"), ("ok-id", "nope", "topic"),
                                  ("ok-id", "skck", "answer_en")):
        try:
            kb_editor.from_form(form, entry_id, topic)
        except kb_editor.EntryProblem as exc:
            assert exc.field == want
        else:
            raise AssertionError("accepted")
    form.update(answer_en="a", source_rows="1", source_0_title="t", source_0_checked="2026-13-01")
    try:
        kb_editor.from_form(form, "ok-id", "skck")
    except kb_editor.EntryProblem as exc:
        assert exc.field == "source_0_checked"


def test_flags_only_a_drop_of_escalation_or_refusal_recall() -> None:
    published = {"escalate_recall": 1.0, "refuse_recall": 0.98, "answer_recall": 0.9}
    assert kb_review.flags(dict(published, answer_recall=0.5), published) == []
    assert kb_review.flags(dict(published, escalate_recall=0.99), published) == ["escalate_recall"]
    assert kb_review.flags(dict(published, refuse_recall=0.9), published) == ["refuse_recall"]


def test_labelled_sets_are_read_from_any_folder(tmp_path) -> None:
    (tmp_path / "a.yaml").write_text("- {q: tolong ada kebakaran, action: escalate}\n"
                                     "- {q: biaya skck, action: answer, entry: skck-biaya}\n")
    items = kb_review.load_labelled(tmp_path)
    assert [i.action for i in items] == ["escalate", "answer"] and items[1].entry == "skck-biaya"
    (tmp_path / "b.yaml").write_text("- {q: x, action: maybe}\n")
    try:
        kb_review.load_labelled(tmp_path)
    except ValueError as exc:
        assert "b.yaml[0]" in str(exc)
    else:
        raise AssertionError("accepted")


def test_similar_questions_are_grouped_with_counts_per_posko_and_day() -> None:
    rows = [(1, "jam buka samsat minggu", "jam buka samsat minggu", "Pasar", "2026-12-01", ""),
            (2, "jam buka samsat minggu", "jam buka samsat minggu", "Pasar", "2026-12-01", ""),
            (3, "samsat minggu buka jam berapa", "samsat minggu buka jam berapa", "Terminal", "2026-12-02", ""),
            (4, "parkir sepeda di stasiun", "parkir sepeda di stasiun", "Terminal", "2026-12-02", "")]
    groups = unanswered.group(rows)
    assert [g.count for g in groups] == [3, 1]
    assert groups[0].per_posko == {"Pasar": 2, "Terminal": 1}
    assert groups[0].per_day == {"2026-12-01": 2, "2026-12-02": 1}
    assert groups[0].example == "jam buka samsat minggu"


def test_an_upload_names_the_bad_field_and_a_line_number_keeps_residents_apart() -> None:
    for body, field in (({}, "items"), ({"items": [{"q": "", "day": "2026-12-01"}]}, "items[0].q"),
                        ({"items": [{"q": "x", "day": "1/12"}]}, "items[0].day")):
        try:
            unanswered.parse_items(body)
        except unanswered.UnansweredInvalid as exc:
            assert field in exc.fields
        else:
            raise AssertionError(body)
    one, two, again = unanswered.parse_items({"items": [{"q": "x y", "day": "2026-12-01", "n": 1},
                                                        {"q": "x y", "day": "2026-12-01", "n": 2},
                                                        {"q": "x y", "day": "2026-12-01", "n": 1}]})
    assert one["digest"] != two["digest"] and one["digest"] == again["digest"]


def test_a_draft_is_not_approved_while_its_evaluation_runs() -> None:
    change = KbChange(id=1, state="draft", author="a", evaluation={"state": "pending", "since": "", "by": ""})
    with pytest.raises(ValueError, match="masih berjalan"):
        kb_review.approve(None, change)


def test_a_pending_evaluation_whose_process_is_gone_is_lost() -> None:
    here = socket.gethostname()
    now = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)

    def change(by: str, since: dt.datetime = now) -> KbChange:
        return KbChange(id=99999, state="draft", evaluation={"state": "pending", "since": since.isoformat(), "by": by})

    assert kb_review.lost(change(f"{here}:{os.getpid()}"), now)  # this process, not queued here
    assert not kb_review.lost(change(f"{here}:{os.getppid()}"), now)  # a live process of this host
    dead = 2**22 + 12345  # above the kernel's pid_max default: no such process
    assert kb_review.lost(change(f"{here}:{dead}"), now)
    elsewhere = "another-hub-host:42"
    assert not kb_review.lost(change(elsewhere, now - dt.timedelta(minutes=5)), now)
    assert kb_review.lost(change(elsewhere, now - dt.timedelta(seconds=kb_review.EVAL_STALE_S + 1)), now)
    done = KbChange(id=3, state="draft", evaluation={"state": "done", "draft": {}})
    assert not kb_review.lost(done, now)


def test_a_diff_shows_the_changed_field_only_whatever_order_the_fields_were_stored_in() -> None:
    [before] = [e for e in kb_editor.read_folder(SHIPPED_KB) if e["id"] == "tilang-helm"]
    after = {k: before[k] for k in reversed(list(before))}  # the form builds its dict in another order
    after["answer"] = dict(before["answer"], id="Jawaban baru.\n")
    changed = [line[1:] for kind, line in kb_editor.diff(before, after) if kind in "+-"]
    assert any("Jawaban baru" in line for line in changed)
    assert not any(line.strip().startswith(("questions:", "speech:", "title:", "sources:")) for line in changed), changed
    assert not any(q in line for q in before["questions"] for line in changed), changed
    assert not any(before["answer"]["en"].splitlines()[0] in line for line in changed), changed


def test_one_reading_of_an_evaluation_serves_the_page_its_poll_and_the_approval() -> None:
    """Evaluations stored before they had a state (a draft's scores, or an error) still read
    as done / error; no evaluation is none; the template filter gives the same answer."""
    assert kb_review.eval_state(None) == "none"
    assert kb_review.eval_state({}) == "none"
    assert kb_review.eval_state({"draft": {"items": 3}, "published": {}}) == "done"
    assert kb_review.eval_state({"error": "no set"}) == "error"
    assert kb_review.eval_state({"state": "pending", "since": "", "by": ""}) == "pending"
    app = Flask(__name__)
    app.register_blueprint(kb_review.bp)
    assert app.jinja_env.from_string("{{ e|eval_state }}").render(e={"error": "x"}) == "error"
    assert not kb_review.pending(KbChange(id=1, state="draft", evaluation={"draft": {}}))
