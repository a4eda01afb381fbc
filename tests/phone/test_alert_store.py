"""How the hub stores a phone's emergency (hub.alerts.record_alert), on a real database
without a server: the member's name is the hub's, the group only one of theirs, the location
kept, and a repeat with a newer fix moves it."""

from __future__ import annotations

import datetime as dt

import pytest

from hub.alerts import PhoneDetails, record_alert
from hub.models import Alert, Event, utcnow
from hub.phone import PhoneMember
from posko.config import load_settings
from posko.messages import Location


@pytest.fixture
def app(tmp_path):
    from hub.app import create_app

    settings = load_settings(environ={"POSKO_POSKO_STATE_DIR": str(tmp_path / "var")})
    return create_app({"POSKO_SETTINGS": settings, "DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}",
                       "AUTO_MIGRATE": True, "WTF_CSRF_ENABLED": False, "TESTING": True})


def _fix(lat: float, at: float) -> Location:
    return Location(lat=lat, lon=115.1686, accuracy_m=9.6, time=at)


def test_a_phone_alert_is_stored_with_the_hubs_name_and_the_location(app) -> None:
    settings = app.config["POSKO_SETTINGS"]
    now = utcnow()
    with app.extensions["posko_db"].writer() as db:
        db.add(PhoneMember(id="hp-1", name="Budi ojol", groups="ojol-kuta,ojol-legian",
                           expires_at=now + dt.timedelta(days=1), enrolled_at=now))
        db.commit()
        t = now.replace(tzinfo=dt.UTC).timestamp()
        first = record_alert(db, settings, alert_id="a1", unit_id="hp-1", posko="Kapolres (palsu)",
                             source="phone_emergency", text="", sent_at=now,
                             phone=PhoneDetails(group="ojol-legian", location=_fix(-8.7, t - 5)))
        assert first == "new"
        alert = db.get(Alert, "a1")
        assert (alert.posko, alert.talk_group, alert.lat, alert.accuracy_m) == ("Budi ojol", "ojol-legian", -8.7, 9.6)
        event = db.query(Event).filter(Event.kind == "alert").one().data
        assert event["group"] == "ojol-legian" and event["map_url"] == "/peta?peringatan=a1"
        assert event["location"].startswith("-8.70000, 115.16860 (±10 m")
        # Pressed again with a newer fix: counted on the open alert, whose location moves.
        again = record_alert(db, settings, alert_id="a2", unit_id="hp-1", posko="", source="phone_emergency",
                             text="", sent_at=now, phone=PhoneDetails(group="ojol-legian", location=_fix(-8.71, t)))
        assert again == "repeat"
        db.refresh(alert)
        assert alert.lat == -8.71
        # A group the member is not in, an unknown phone, no location: stored, none of it believed.
        record_alert(db, settings, alert_id="b1", unit_id="hp-x", posko="Siapa", source="phone_emergency",
                     text="", sent_at=now, phone=PhoneDetails(group="lain", no_location="denied"))
        other = db.get(Alert, "b1")
        assert (other.posko, other.talk_group, other.lat, other.no_location) == ("", "", None, "denied")
        assert record_alert(db, settings, alert_id="b1", unit_id="hp-x", posko="", source="phone_emergency",
                            text="", sent_at=now) == "duplicate"
