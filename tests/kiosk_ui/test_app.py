"""The kiosk app's JSON calls through the Flask test client: bad input, photos, times, the brain."""

from __future__ import annotations

import io

import pytest

from kiosk_ui.app import create_app
from tests.kiosk_ui.conftest import make_settings


def test_bad_input_to_the_lapor_call_names_the_fields(tmp_path) -> None:
    app = create_app({"SETTINGS": make_settings(tmp_path), "START_BRAIN": False})
    client = app.test_client()
    response = client.post("/api/lapor", data={"category": "bom", "description": ""})
    assert response.status_code == 422
    assert response.get_json()["fields"] == ["category", "description"]
    response = client.post("/api/lapor", data={"category": "lainnya", "description": "x",
                                               "photo": (io.BytesIO(b"not an image"), "x.jpg")},
                           content_type="multipart/form-data")
    assert response.status_code == 422 and response.get_json()["fields"] == ["photo"]
    response = client.post("/api/cek", json={"ticket": "K7QM-4TZ0", "pin": "1234"})
    assert response.status_code == 422 and response.get_json()["error"] == "ticket"
    response = client.post("/api/cek", json={"ticket": "K7QM-4TZP", "pin": "12a4"})
    assert response.status_code == 422 and response.get_json()["error"] == "pin"
    response = client.post("/api/lapor", data={"category": "lainnya", "description": "x"},
                           headers={"Origin": "http://evil.example"})
    assert response.status_code == 403
    assert app.extensions["kiosk"].outbox.list() == []


def test_a_zero_byte_photo_is_a_field_error_not_a_report_without_a_photo(tmp_path) -> None:
    app = create_app({"SETTINGS": make_settings(tmp_path), "START_BRAIN": False})
    response = app.test_client().post(
        "/api/lapor", data={"category": "lainnya", "description": "x", "where": "here",
                            "photo": (io.BytesIO(b""), "kamera.jpg")},
        content_type="multipart/form-data")
    assert response.status_code == 422 and response.get_json()["fields"] == ["photo"]
    assert app.extensions["kiosk"].outbox.list() == []


def test_a_control_character_is_refused_before_a_ticket_is_shown(tmp_path) -> None:
    app = create_app({"SETTINGS": make_settings(tmp_path), "START_BRAIN": False})
    response = app.test_client().post("/api/lapor", data={
        "category": "lainnya", "description": "motor\x00hilang", "where": "here"})
    assert response.status_code == 422 and response.get_json()["fields"] == ["description"]
    assert "ticket" not in response.get_json()
    assert app.extensions["kiosk"].outbox.list() == []


def test_the_lapor_time_follows_the_hubs_clock_when_the_kiosks_is_wrong(tmp_path) -> None:
    import datetime as dt
    import json

    app = create_app({"SETTINGS": make_settings(tmp_path), "START_BRAIN": False})
    box = app.extensions["kiosk"].outbox
    box.set_meta("clock_offset_s", str(-25 * 3600))  # this kiosk runs 25 h ahead of the hub
    response = app.test_client().post("/api/lapor", data={"category": "lainnya", "description": "x",
                                                          "where": "here"})
    assert response.status_code == 200
    body = json.loads(box.body_bytes(response.get_json()["id"]))
    occurred = dt.datetime.fromisoformat(body["occurred_at"])
    assert abs((occurred - dt.datetime.now(dt.UTC)).total_seconds() + 25 * 3600) < 60


def test_an_escalated_question_without_a_broker_link_warns_instead_of_pretending(tmp_path) -> None:
    app = create_app({"SETTINGS": make_settings(tmp_path), "START_BRAIN": True})
    handle = app.extensions["kiosk"].brain
    handle.wait(60)
    if handle.status != "ready":
        pytest.skip(f"the assistant brain is not available in this build: {handle.error}")
    answer = app.test_client().post("/api/tanya", json={"q": "tolong ada kecelakaan orangnya berdarah",
                                                        "lang": "id"}).get_json()
    assert answer["reply"]["action"] == "escalate"
    # no hub, no broker: the alert is kept on the kiosk and the screen is told "not sent"
    assert answer["alert"]["state"] == "not_sent" and answer["alert"]["sent_at"] is None
    stored = app.extensions["kiosk"].alerts.get(answer["alert_id"])
    assert stored is not None and stored.alert.source == "assistant"
    # the brain's "officers are being alerted now" is not passed on as if it were true
    assert "diberi tahu sekarang" not in answer["reply"]["text"]
    assert "html" not in answer["reply"]  # the screen builds the markup from text itself


def test_tanya_says_the_assistant_is_unavailable_when_the_brain_cannot_load(tmp_path) -> None:
    settings = make_settings(tmp_path, POSKO_ASSISTANT_KB_DIR=str(tmp_path / "no-such-kb"))
    app = create_app({"SETTINGS": settings, "START_BRAIN": True})
    handle = app.extensions["kiosk"].brain
    handle.wait(60)
    assert handle.status in ("missing", "failed") and handle.error
    client = app.test_client()
    assert "asisten sedang tidak tersedia" in client.get("/tanya").get_data(as_text=True)
    response = client.post("/api/tanya", json={"q": "biaya skck", "lang": "id"})
    assert response.status_code == 503
    body = response.get_json()
    assert body["available"] is False and "110" in body["message"] and "reply" not in body


def test_darurat_without_any_path_keeps_the_alert_and_says_not_sent(tmp_path) -> None:
    from posko.broker import free_port

    settings = make_settings(tmp_path, POSKO_MQTT_PORT=str(free_port()))  # no broker, no hub
    app = create_app({"SETTINGS": settings, "START_MQTT": True})
    try:
        body = app.test_client().post("/api/darurat").get_json()
        assert body["ok"] is True and body["alert"]["state"] == "not_sent" and body["alert"]["sent_at"] is None
        rec = app.extensions["kiosk"].alerts.get(body["alert_id"])
        assert rec is not None and rec.alert.source == "kiosk_darurat" and rec.attempts >= 1
        status = app.test_client().get(f"/api/alerts/{body['alert_id']}").get_json()
        assert status["state"] == "not_sent"
    finally:
        app.extensions["kiosk"].stop()


def test_darurat_that_cannot_even_be_stored_says_call_110(tmp_path) -> None:
    app = create_app({"SETTINGS": make_settings(tmp_path), "START_ALERTS": False})
    box = app.extensions["kiosk"].alerts
    for suffix in ("", "-wal", "-shm"):
        (box.path.parent / (box.path.name + suffix)).unlink(missing_ok=True)
    box.path.write_bytes(b"this is not a database" * 100)  # a broken SD card
    response = app.test_client().post("/api/darurat")
    assert response.status_code == 503 and response.get_json()["ok"] is False
    page = app.test_client().get("/darurat").get_data(as_text=True)
    assert "TELEPON 110 SEKARANG" in page  # the failure screen the page shows then


def test_listen_needs_a_session_id_made_by_the_page(tmp_path) -> None:
    app = create_app({"SETTINGS": make_settings(tmp_path)})
    client = app.test_client()
    for bad in (None, "", "x" * 10, "../../etc", "A" * 32):
        response = client.post("/api/listen", json={"lang": "id", "session": bad})
        assert response.status_code == 422 and response.get_json()["error"] == "session"
    response = client.post("/api/listen", json={"lang": "id", "session": "ab" * 16})
    assert response.status_code == 503  # no voice link in this app: said, not pretended
    assert "suara" in response.get_json()["message"]
