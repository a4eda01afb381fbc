"""The knowledge-base editor in Debian's Chromium against a real hub, a real broker and a
unit's real KB updater (real `kb/current`, real bundle download with its token).

Edit an entry, approve it as a second person, publish: the unit answers the new text; a
rollback returns the old answer; a draft that breaks emergency recall is flagged; unanswered
questions from two kiosks appear grouped with counts; roles are enforced.
"""

from __future__ import annotations

import time
import types
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from posko import topics
from posko.config import load_settings
from posko.enroll import write_token
from posko.messages import Heartbeat
from posko.mqtt import MqttLink
from tests.hub.support import HubProcess, Officer
from tests.support.kb import next_announcement

pytestmark = [pytest.mark.browser, pytest.mark.broker, pytest.mark.timeout(600)]

# Saving a draft only checks it with the KB loader; its evaluation (training the draft's intent
# model, then the labelled set against the draft and the published KB) runs in the background:
# 20-30 s on an idle machine, minutes while the whole suite runs. Tests that need the scores
# wait for them.
SAVE_TIMEOUT_MS = 30_000
EVAL_TIMEOUT_MS = 480_000

W, H = 1280, 900
DEVSET = Path(__file__).resolve().parents[1] / "assistant" / "devset"
QUESTION = "Berapa biaya pembuatan SKCK?"
ENTRY = "skck-biaya"


# The labelled set the hub evaluates drafts against: the dev set's own files (cries for help,
# refusals, the first KB set, fallbacks; 680 questions) rather than all 3,400, so a draft's
# scores come in a minute sooner while the suite runs. The flag test's cries for help are in it.
EVAL_FILES = ("emergency.yaml", "safety.yaml", "kb_a.yaml", "fallback.yaml")


@pytest.fixture(scope="module")
def hub(broker, tmp_path_factory) -> Iterator[HubProcess]:
    labelled = tmp_path_factory.mktemp("kbeval")
    for name in EVAL_FILES:
        (labelled / name).write_bytes((DEVSET / name).read_bytes())
    proc = HubProcess(db_url=f"sqlite:///{tmp_path_factory.mktemp('kbeddb') / 'hub.db'}",
                      state_dir=tmp_path_factory.mktemp("kbed"), mqtt_port=broker.port,
                      topic_root=f"test/{uuid.uuid4().hex[:8]}/posko/v1",
                      extra_env={"POSKO_HUB_KB_EVAL_DIR": str(labelled)}).start()
    try:
        proc.first = next_announcement(broker, proc)
        yield proc
    finally:
        proc.stop()


class UnitKb:
    """A unit's KB updater (firmware.kb_update) on its own MQTT link; answers from the
    folder it installed, as the unit's brain holder does."""

    def __init__(self, hub: HubProcess, broker, state: Path) -> None:
        from firmware.kb_update import KbUpdater

        self.unit_id, token = hub.add_unit("Posko Pasar")
        env = {"POSKO_MQTT_PORT": str(broker.port), "POSKO_MQTT_TOPIC_ROOT": hub.topic_root,
               "POSKO_POSKO_UNIT_ID": self.unit_id, "POSKO_POSKO_STATE_DIR": str(state),
               "POSKO_KIOSK_HUB_URL": hub.base}
        self.settings = load_settings(path=None, environ=env)
        write_token(self.settings, token)
        self.link = MqttLink(self.settings.mqtt, client_id=f"unit-{self.unit_id}").start()
        assert self.link.wait_connected(10)
        self.updater = KbUpdater(retry_first_s=0.5)
        ctx = types.SimpleNamespace(settings=self.settings, link=self.link, root=hub.topic_root,
                                    kb_installed=lambda: None, request_heartbeat=self.heartbeat)
        self.updater.start(ctx)

    def heartbeat(self) -> None:
        """What the agent sends: the updater's status under parts.kb."""
        beat = Heartbeat(unit=self.unit_id, state="online", version="test", uptime_s=1.0,
                         disk_free_mb=100.0, outbox_pending=0, outbox_oldest_s=0.0, models={},
                         talk_group="", interval_s=30.0, parts={"kb": self.updater.status()})
        self.link.publish(topics.unit_status(self.unit_id, self.settings.mqtt.topic_root),
                          beat.to_json(), qos=1, retain=True)

    def wait_installed(self, version: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.updater.installed == version:
                return
            time.sleep(0.2)
        raise AssertionError(f"{version} not installed: {self.updater.status()}")

    def answer(self) -> str:
        from assistant.brain import load_brain
        from posko.kb_paths import active_kb_dir

        return load_brain(active_kb_dir(self.settings)).ask(QUESTION, "id").text

    def stop(self) -> None:
        self.updater.stop()
        self.link.stop()


@pytest.fixture(scope="module")
def unit(hub, broker, tmp_path_factory) -> Iterator[UnitKb]:
    u = UnitKb(hub, broker, tmp_path_factory.mktemp("kbunit"))
    try:
        u.wait_installed(hub.first.version)
        yield u
    finally:
        u.stop()


def login(new_page, hub, user, path="/kb"):
    page = new_page(W, H)
    page.goto(hub.base + path)
    page.fill("input[name=username]", user[0])
    page.fill("input[name=password]", user[1])
    with page.expect_navigation():  # the locators that follow do not wait for the next page
        page.click("button[type=submit]")
    assert "/masuk" not in page.url, page.locator("body").inner_text()[:300]
    return page


def current_version(hub) -> str:
    import json

    return json.loads((hub.state_dir / "hub" / "kb" / "current.json").read_text())["version"]


def test_edit_approve_publish_reaches_the_unit_and_rollback_returns_it(hub, unit, broker, new_page) -> None:
    editor, reviewer = hub.add_user("kb_editor"), hub.add_user("kb_editor")
    old_answer = unit.answer()
    marker = f"Tarif baru {uuid.uuid4().hex[:6]}"

    # the editor changes the screen answer and a source's date checked
    page = login(new_page, hub, editor)
    page.fill("#kb-search input[name=q]", "SKCK")
    page.click("#kb-search button")
    page.click(f"#kb-entries a:text('{ENTRY}')")
    page.wait_for_selector("#kb-form")
    assert page.input_value("textarea[name=answer_en]")  # both languages side by side
    answer = page.input_value("textarea[name=answer_id]")
    page.fill("textarea[name=answer_id]", f"{marker}. " + answer)
    page.click("#save-draft", timeout=SAVE_TIMEOUT_MS)
    page.wait_for_selector("#change-state[data-state=draft]")
    assert page.is_visible("#own-change") and page.locator("#approve-form").count() == 0
    assert any(marker in line for line in page.locator("pre.diff .diff-add").all_inner_texts())
    change_url = page.url
    # the save did not wait for the evaluation (a model is trained for it: seconds at least)
    assert page.locator("#eval").get_attribute("data-state") == "pending"
    assert page.is_visible(".eval-pending")
    page.screenshot(path="tests/artifacts/hub-kb-change-pending.png")

    # nobody approves a draft before its scores are in, even by posting the form
    path = change_url.replace(hub.base, "")
    early = Officer(hub, *reviewer).post(path + "/setujui", page=path)
    assert early.status_code == 409 and "masih berjalan" in early.text
    # the author cannot approve the change by posting the form anyway
    page.wait_for_selector("#eval[data-state=done]", timeout=EVAL_TIMEOUT_MS)  # the page reloads itself
    page.screenshot(path="tests/artifacts/hub-kb-change.png")
    me = Officer(hub, *editor)
    refused = me.post(path + "/setujui", page=path)
    assert refused.status_code == 403

    # nothing reached the unit yet; the published KB is unchanged
    assert current_version(hub) == hub.first.version

    # a second editor approves, then publishes
    page2 = login(new_page, hub, reviewer, change_url.replace(hub.base, ""))
    page2.wait_for_selector("#approve-form")
    page2.click("#approve-form button")
    page2.wait_for_selector("#publish-form")
    page2.click("#publish-form button")
    page2.wait_for_selector(".flash-ok")
    new_version = page2.inner_text("#kb-current").strip()
    assert new_version != hub.first.version

    unit.wait_installed(new_version)
    assert marker in unit.answer() and marker not in old_answer

    # the fleet page shows the unit's KB version and that it is current
    unit.heartbeat()
    page2.goto(hub.base + "/armada")
    cell = page2.locator(f"tr[data-unit='{unit.unit_id}'] td.kb-version")
    page2.wait_for_function("s => document.querySelector(s)?.dataset.kb !== ''",
                            arg=f"tr[data-unit='{unit.unit_id}'] td.kb-version", timeout=15000)
    assert cell.get_attribute("data-kb") == new_version and cell.locator(".kb-current").count() == 1

    # rollback: the earlier bundle, one click; the unit answers the old text again
    page2.goto(hub.base + "/kb/terbit")
    page2.click(f"#kb-bundles tr[data-version='{hub.first.version}'] button.republish")
    page2.wait_for_selector(".flash-ok")
    assert page2.inner_text("#kb-current").strip() == hub.first.version
    unit.wait_installed(hub.first.version)
    assert marker not in unit.answer() and unit.answer() == old_answer
    # the working copy follows the rollback: the editor sees the old answer again
    page2.goto(hub.base + f"/kb/entri/{ENTRY}")
    assert marker not in page2.input_value("textarea[name=answer_id]")
    # the fleet page follows the unit's heartbeat: current again after the rollback's install;
    # a unit still on the edited bundle is shown as not current
    deadline = time.monotonic() + 15
    while True:
        page2.goto(hub.base + "/armada")
        if cell.get_attribute("data-kb") == hub.first.version or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert cell.get_attribute("data-kb") == hub.first.version and cell.locator(".kb-current").count() == 1
    stale = Heartbeat(unit=unit.unit_id, state="online", version="test", uptime_s=1.0, disk_free_mb=1.0,
                      outbox_pending=0, outbox_oldest_s=0.0, models={}, talk_group="", interval_s=30.0,
                      parts={"kb": {"installed": new_version}})
    unit.link.publish(topics.unit_status(unit.unit_id, hub.topic_root), stale.to_json(), qos=1, retain=True)
    deadline = time.monotonic() + 15
    while True:
        page2.goto(hub.base + "/armada")
        if cell.get_attribute("data-kb") == new_version or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert cell.locator(".kb-stale").count() == 1
    page2.screenshot(path="tests/artifacts/hub-kb-fleet.png")

    # every step is in the audit trail, with who did it
    from sqlalchemy import select

    from hub.models import AuditEntry

    with hub.db() as db:
        trail = [(a.action, a.actor) for a in db.scalars(select(AuditEntry).where(AuditEntry.action.like("kb_%")))]
    for step in (("kb_edit", editor[0]), ("kb_approve", reviewer[0]), ("kb_publish", reviewer[0]),
                 ("kb_rollback", reviewer[0])):
        assert step in trail, trail


def test_a_draft_that_breaks_emergency_recall_is_flagged(hub, new_page) -> None:
    editor = hub.add_user("kb_editor")
    page = login(new_page, hub, editor, "/kb/entri/tilang-helm")
    if page.locator("#kb-form").count() == 0:
        pytest.fail("entry tilang-helm not in the shipped KB")
    questions = page.input_value("textarea[name=questions]")
    # cries for help the rules leave to the emergency examples: a KB entry that claims them wins
    page.fill("textarea[name=questions]", questions + "\nsomebody is hurt and bleeding a lot"
              "\npak ada motor nyungsep ke parit pengendaranya gak bangun"
              "\nnenek saya lemas gak bisa diajak ngomong")
    page.click("#save-draft", timeout=SAVE_TIMEOUT_MS)
    page.wait_for_selector("#change-state[data-state=draft]", timeout=SAVE_TIMEOUT_MS)
    page.wait_for_selector("#eval[data-state=done]", timeout=EVAL_TIMEOUT_MS)
    flag = page.locator(".eval-flag")
    assert flag.count() == 1 and "recall darurat" in flag.inner_text()
    assert page.locator("tr.flagged").count() >= 1
    page.screenshot(path="tests/artifacts/hub-kb-flagged.png")

    # a second person cannot approve it without confirming the drop
    reviewer = login(new_page, hub, hub.add_user("supervisor"), page.url.replace(hub.base, ""))
    reviewer.click("#approve-form button")
    assert "escalate_recall" in reviewer.inner_text(".flash-error")
    assert reviewer.locator("#change-state").get_attribute("data-state") == "draft"


def test_roles_an_operator_cannot_edit_and_sources_are_required(hub, new_page) -> None:
    operator = hub.add_user("operator")
    page = login(new_page, hub, operator, "/laporan")
    assert page.locator("nav >> text=Basis pengetahuan").count() == 0
    response = page.goto(hub.base + f"/kb/entri/{ENTRY}")
    assert response.status == 403
    off = Officer(hub, *operator)
    assert off.get("/kb/tinjau").status_code == 403

    # an entry without a date checked is never published
    editor = login(new_page, hub, hub.add_user("kb_editor"), "/kb/baru")
    editor.fill("input[name=id]", "skck-uji-tanpa-sumber")
    editor.select_option("select[name=topic]", "skck")
    for part, text in (("title", "Uji"), ("answer", "Jawaban uji."), ("speech", "Jawaban uji.")):
        editor.fill(f"[name={part}_id]", text)
        editor.fill(f"[name={part}_en]", "Test " + text)
    editor.fill("textarea[name=questions]", "\n".join(f"pertanyaan uji nomor {i} tentang kartu" for i in range(9)))
    editor.fill("input[name=source_0_title]", "Sumber tanpa tanggal")
    editor.click("#save-draft", timeout=SAVE_TIMEOUT_MS)
    assert "checked" in editor.inner_text("#form-error") and editor.locator("#change-state").count() == 0


def test_unanswered_questions_from_two_kiosks_are_grouped_with_counts(hub, new_page) -> None:
    kiosks = [hub.add_unit("Posko Pasar Baru"), hub.add_unit("Posko Terminal")]
    tag = uuid.uuid4().hex[:5]
    sent = [
        (kiosks[0], "2026-12-01", f"jam buka samsat keliling {tag} hari minggu"),
        (kiosks[0], "2026-12-01", f"jam buka samsat keliling {tag} hari minggu"),  # another resident
        (kiosks[1], "2026-12-02", f"samsat keliling {tag} buka jam berapa hari minggu"),
        (kiosks[1], "2026-12-02", f"dimana parkir sepeda {tag} stasiun"),
    ]
    for i, ((_unit_id, token), day, q) in enumerate(sent):
        body = {"items": [{"day": day, "q": q, "key": q.lower(), "action": "fallback", "best": None,
                           "n": i}]}
        r = requests.post(f"{hub.base}/api/v1/unanswered", json=body, timeout=10,
                          headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
    # a line sent again is not counted twice; no token is refused; a bad day names the field
    r = requests.post(f"{hub.base}/api/v1/unanswered", timeout=10,
                      json={"items": [{"day": "2026-12-02", "q": sent[3][2], "key": sent[3][2].lower(),
                                       "action": "fallback", "best": None, "n": 3}]},
                      headers={"Authorization": f"Bearer {kiosks[1][1]}"})
    assert r.json()["stored"] == 0
    assert requests.post(f"{hub.base}/api/v1/unanswered", json={"items": []}, timeout=10).status_code == 401
    bad = requests.post(f"{hub.base}/api/v1/unanswered", json={"items": [{"q": "x", "day": "kemarin"}]},
                        headers={"Authorization": f"Bearer {kiosks[0][1]}"}, timeout=10)
    assert bad.status_code in (400, 422) and "items[0].day" in bad.text

    page = login(new_page, hub, hub.add_user("kb_editor"), "/kb/tak-terjawab")
    samsat = page.locator("tr.group", has_text=f"samsat keliling {tag}")
    assert samsat.count() == 1 and samsat.get_attribute("data-count") == "3"
    assert "Posko Pasar Baru: 2" in samsat.inner_text() and "Posko Terminal: 1" in samsat.inner_text()
    assert "2026-12-01: 2" in samsat.inner_text() and "2026-12-02: 1" in samsat.inner_text()
    parking = page.locator("tr.group", has_text=f"parkir sepeda {tag}")
    assert parking.count() == 1 and parking.get_attribute("data-count") == "1"
    page.screenshot(path="tests/artifacts/hub-kb-unanswered.png")

    # dismissing a group removes it from the list
    parking.locator("button:text('Abaikan')").click()
    page.wait_for_selector(".flash-ok")
    assert page.locator("tr.group", has_text=f"parkir sepeda {tag}").count() == 0


def test_the_try_box_asks_the_draft_next_to_the_published_kb(hub, new_page) -> None:
    editor = hub.add_user("kb_editor")
    marker = f"Biaya uji {uuid.uuid4().hex[:6]}"
    page = login(new_page, hub, editor, f"/kb/entri/{ENTRY}")
    page.fill("textarea[name=answer_id]", f"{marker}. " + page.input_value("textarea[name=answer_id]"))
    page.click("#save-draft", timeout=SAVE_TIMEOUT_MS)
    page.wait_for_selector("#change-state[data-state=draft]", timeout=SAVE_TIMEOUT_MS)
    page.goto(hub.base + "/kb/coba")
    page.fill("#try-form input[name=q]", QUESTION)
    page.click("#try-form button")
    page.wait_for_selector("#try-result", timeout=EVAL_TIMEOUT_MS)  # trains the draft's model
    draft, published = page.locator("#try-draft"), page.locator("#try-published")
    assert draft.locator(".action").inner_text() == "answer" and draft.locator(".entry").inner_text() == ENTRY
    assert marker in draft.locator(".answer").inner_text()
    assert published.locator(".entry").inner_text() == ENTRY and marker not in published.locator(".answer").inner_text()
    assert float(draft.locator(".confidence").inner_text()) > 0
    page.screenshot(path="tests/artifacts/hub-kb-try.png")


def test_a_unit_sends_its_log_and_a_group_becomes_example_questions(hub, new_page, tmp_path) -> None:
    from assistant.brain import Reply
    from assistant.unanswered import UnansweredLog
    from firmware.unanswered_upload import UnansweredUploader, log_path

    unit_id, token = hub.add_unit("Posko Stasiun")
    settings = load_settings(path=None, environ={"POSKO_POSKO_UNIT_ID": unit_id,
                                                 "POSKO_POSKO_STATE_DIR": str(tmp_path),
                                                 "POSKO_KIOSK_HUB_URL": hub.base})
    write_token(settings, token)
    tag = uuid.uuid4().hex[:5]
    unlog = UnansweredLog(log_path(settings))
    for q in (f"kalau sim hilang di stasiun {tag} nomor saya 081234567890 gimana",
              f"sim hilang di stasiun {tag} gimana ngurusnya"):
        unlog.record(q, Reply("fallback", "", ""))
    uploader = UnansweredUploader(interval_s=0)
    uploader.ctx = types.SimpleNamespace(settings=settings)
    assert uploader.upload_once() == 2
    assert uploader.upload_once() == 0  # nothing new: nothing sent twice

    page = login(new_page, hub, hub.add_user("kb_editor"), "/kb/tak-terjawab")
    group = page.locator("tr.group", has_text=f"stasiun {tag}")
    assert group.count() == 1 and group.get_attribute("data-count") == "2"
    text = group.inner_text()
    assert "081234567890" not in text and "[telepon]" in text and "Posko Stasiun: 2" in text
    group.locator("select[name=entry_id]").select_option("sim-hilang-rusak")
    group.locator("button:text('Jadikan contoh pertanyaan')").click()
    page.wait_for_selector("#change-state[data-state=draft]", timeout=SAVE_TIMEOUT_MS)
    added = page.locator("pre.diff .diff-add").all_inner_texts()
    assert any(f"sim hilang di stasiun {tag} gimana ngurusnya" in line for line in added)
    page.goto(hub.base + "/kb/tak-terjawab")
    assert page.locator("tr.group", has_text=f"stasiun {tag}").count() == 0
