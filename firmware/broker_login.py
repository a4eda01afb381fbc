"""Keep the unit's login at the central broker current (a UnitComponent named "broker_login").

Enrolment gives the unit its broker login (posko.enroll). Every `[unit] broker_login_check_s`
this component asks the hub over HTTPS, with the unit's token, which login it holds for the
unit (`GET /api/v1/broker-login`). When the hub's id differs from the one kept with the
password (a maintainer rotated it, so the old password is already refused; or an earlier
answer was lost), it asks for a new login (`POST /api/v1/broker-login`) and keeps it in
`<state>/unit/broker-login.json`. Writing that file is all the agent (user posko) can do:
root's posko-bridge-login.path then writes the login into the bridge's configuration and
restarts the local Mosquitto (firmware/bridge_conf.py). Nothing is asked while the hub is
away; the next round tries again.
"""

from __future__ import annotations

import logging
from typing import Any

from firmware.errors import FirmwareError
from firmware.periodic import PeriodicComponent
from posko.enroll import EnrolError, read_broker_login, read_token, write_broker_login
from posko.hubclient import HubClient, HubUnreachable

log = logging.getLogger(__name__)


class LoginCheckError(FirmwareError, OSError):
    """The hub could not be asked, or did not give a login now."""


class BrokerLoginKeeper(PeriodicComponent):
    """A UnitComponent named "broker_login"."""

    name = "broker_login"
    thread_name = "broker-login"

    def __init__(self, interval_s: float | None = None) -> None:
        super().__init__(interval_s)
        self.state = "off"  # off | current | renewed | unmanaged | error
        self.renewed = 0
        self.last_error = ""

    def configured_interval(self, ctx) -> float:
        return ctx.settings.unit.broker_login_check_s

    def enabled(self, ctx) -> bool:
        return bool(ctx.settings.kiosk.hub_url)

    def status(self) -> dict[str, Any]:
        mine = read_broker_login(self.ctx.settings) if self.ctx is not None else None
        return {"state": self.state, "login": mine["login"] if mine else "", "renewed": self.renewed,
                "error": self.last_error}

    def _loop(self) -> None:
        wait = 0.0  # the first check at once: a unit enrolled before the hub gave logins gets one
        while not self._stop.wait(wait):
            wait = self.interval_s
            try:
                self.check_once()
            except Exception as exc:  # the hub away, a full disk: the next round tries again
                self.state, self.last_error = "error", str(exc)[:200]
                log.info("broker login not checked: %s", exc)

    def check_once(self) -> str:
        """Ask the hub once; renew the login when the hub's differs. Returns the state
        (current, renewed, unmanaged). LoginCheckError when the hub is away or refuses."""
        s = self.ctx.settings
        unit = s.posko.unit_id
        token = read_token(s)
        if token is None:
            raise LoginCheckError("this unit is not enrolled (posko enroll); no token for the hub")
        hub = HubClient(s.kiosk.hub_url, lambda: token, timeout_s=s.kiosk.http_timeout_s,
                        ca_file=s.kiosk.hub_ca_file)
        held = self._ask(hub.broker_login)
        if not held.get("managed"):
            self.state, self.last_error = "unmanaged", ""
            return self.state
        mine = read_broker_login(s)
        if mine and held.get("login") and mine["login"] == held["login"] and mine["user"] == unit:
            self.state, self.last_error = "current", ""
            return self.state
        fresh = self._ask(hub.new_broker_login)
        try:
            write_broker_login(s, fresh, unit)
        except EnrolError as exc:
            raise LoginCheckError(str(exc)) from None
        self.renewed += 1
        self.state, self.last_error = "renewed", ""
        log.info("new broker login %s kept; the bridge is rewritten by posko-bridge-login.path",
                 fresh.get("login"))
        return self.state

    @staticmethod
    def _ask(call) -> dict[str, Any]:
        try:
            answer = call()
        except HubUnreachable as exc:
            raise LoginCheckError(str(exc)) from None
        if not (answer.from_hub and answer.status == 200):
            raise LoginCheckError(f"hub answered {answer.status}: {answer.message()[:200]}")
        return answer.data
