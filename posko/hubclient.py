"""HTTP calls from a unit (the kiosk, the knowledge-base updater) to the hub's API (`/api/v1`).

Every call returns an `Answer` (status and parsed body) or raises `HubUnreachable` for a
connection that failed, was cut or timed out; the sync worker and the Cek Laporan screen
decide what that means.

Something else may answer in the hub's place: a captive portal ("kuota habis", a hotspot
login) or an operator's proxy answers `200 text/html` or a 302 to its login page. Redirects
are never followed, and `Answer.from_hub` is true only for the hub API's own kind of
answer (a JSON object); the probe asks `GET /api/v1/ping`, whose answer names the service.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from posko.errors import PoskoError


class HubUnreachable(PoskoError, ConnectionError):
    """The hub could not be reached, or the connection broke before its answer."""


SERVICE = "posko-hub"  # what GET /api/v1/ping names: the proof that the hub itself answers


@dataclass(frozen=True)
class Answer:
    status: int
    data: Any  # parsed JSON, or None
    text: str  # the body as text (for reasons shown to maintainers)
    content_type: str = ""

    @property
    def from_hub(self) -> bool:
        """True when this is the hub API's kind of answer: JSON content and a JSON object.

        A captive portal's HTML page, a redirect to a login page or a proxy's error page is
        not; nothing is decided on such an answer (it is a failed try).
        """
        return (self.content_type.split(";")[0].strip().lower() == "application/json"
                and isinstance(self.data, dict) and not 300 <= self.status < 400)

    def describe(self) -> str:
        """A short reason for maintainers when the answer is not the hub's."""
        kind = self.content_type.split(";")[0].strip() or "no content type"
        return f"not the hub's answer: http {self.status} {kind} (captive portal or proxy?)"

    def message(self) -> str:
        """The hub's human message, if its JSON body carries one, else the raw text."""
        if isinstance(self.data, dict):
            for key in ("message", "error", "detail"):
                value = self.data.get(key)
                if isinstance(value, str) and value:
                    extra = self.data.get("fields") or self.data.get("errors")
                    return value + (f" {json.dumps(extra, ensure_ascii=False)}" if extra else "")
            return json.dumps(self.data, ensure_ascii=False)
        return self.text


@dataclass(frozen=True)
class Probe:
    """One reachability probe: is it the hub, and how far the hub's clock is from ours."""

    ok: bool
    reason: str = ""
    offset_s: float | None = None  # hub time minus local time, seconds (None: unknown)


class HubClient:
    """One hub base URL, one unit token (read on every call, so a new enrolment is used at once)."""

    def __init__(self, base_url: str, token_provider: Callable[[], str | None],
                 timeout_s: float = 10.0, ca_file: str = "") -> None:
        """ca_file: the hub's pinned certificate ([kiosk] hub_ca_file); "" trusts public CAs."""
        self.base = base_url.rstrip("/") + "/api/v1"
        self.token_provider = token_provider
        self.timeout_s = timeout_s
        self.session = requests.Session()
        self.session.trust_env = False  # the hub is on our own network; never a proxy from env
        # Passed on every call too, so that nothing but the pin decides whom HTTPS trusts.
        self.verify: str | bool = ca_file or True
        self.session.verify = self.verify

    def token(self) -> str | None:
        return self.token_provider()

    def _call(self, method: str, path: str, *, data: bytes | None = None,
              content_type: str | None = None, params: dict | None = None,
              timeout_s: float | None = None) -> Answer:
        headers = {"Accept": "application/json"}
        token = self.token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        try:
            # Never follow a redirect: a hub does not send one, a captive portal does.
            resp = self.session.request(method, self.base + path, data=data, params=params,
                                        headers=headers, timeout=timeout_s or self.timeout_s,
                                        allow_redirects=False, verify=self.verify)
            text = resp.text
        except requests.RequestException as exc:
            raise HubUnreachable(f"{type(exc).__name__}: {exc}") from None
        try:
            parsed = resp.json()
        except ValueError:
            parsed = None
        return Answer(resp.status_code, parsed, text[:2000], resp.headers.get("Content-Type", ""))

    def enrol(self, unit: str, code: str, timeout_s: float | None = None) -> Answer:
        """POST /enroll with a one-time code (no token yet): the hub's answer carries it."""
        body = json.dumps({"unit": unit, "code": code}).encode()
        return self._call("POST", "/enroll", data=body, content_type="application/json",
                          timeout_s=timeout_s)

    def post_report(self, body: bytes) -> Answer:
        return self._call("POST", "/reports", data=body, content_type="application/json")

    def post_alert(self, body: bytes, timeout_s: float | None = None) -> Answer:
        """POST one alert (posko.messages.Alert JSON) to the hub; idempotent by alert id."""
        return self._call("POST", "/alerts", data=body, content_type="application/json",
                          timeout_s=timeout_s)

    def put_photo(self, sha256: str, data: bytes) -> Answer:
        return self._call("PUT", f"/photos/{sha256}", data=data, content_type="image/jpeg")

    def ticket(self, ticket: str, pin: str, timeout_s: float | None = None) -> Answer:
        return self._call("GET", f"/tickets/{quote(ticket, safe='')}", params={"pin": pin},
                          timeout_s=timeout_s)

    def receipts(self, ids: list[str]) -> Answer:
        """The hub's receipts (id -> digest) for these of this unit's reports."""
        return self._call("POST", "/receipts", data=json.dumps({"ids": ids}).encode(),
                          content_type="application/json")

    def post_unanswered(self, items: list[dict]) -> Answer:
        """Lines of the unit's unanswered log (scrubbed) for the KB editors; idempotent per line."""
        return self._call("POST", "/unanswered", data=json.dumps({"items": items}, ensure_ascii=False).encode(),
                          content_type="application/json")

    def broker_login(self) -> Answer:
        """GET /broker-login: the id of the broker login the hub holds for this unit now."""
        return self._call("GET", "/broker-login")

    def new_broker_login(self) -> Answer:
        """POST /broker-login: a new broker login for this unit (the old password stops working)."""
        return self._call("POST", "/broker-login", data=b"{}", content_type="application/json")

    def download(self, path: str, max_bytes: int, timeout_s: float | None = None) -> tuple[int, bytes]:
        """GET a file under the API (`path` from the hub's root, e.g. `/api/v1/kb/<v>`):
        (status, body). ValueError when the body grows past `max_bytes`."""
        headers = {}
        token = self.token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        url = self.base[:-len("/api/v1")] + path
        try:
            with self.session.get(url, headers=headers, stream=True, verify=self.verify,
                                  timeout=timeout_s or self.timeout_s) as resp:
                body = bytearray()
                for chunk in resp.iter_content(64 * 1024):
                    body += chunk
                    if len(body) > max_bytes:
                        raise ValueError(f"body larger than {max_bytes} bytes")
                return resp.status_code, bytes(body)
        except requests.RequestException as exc:  # refused, cut, timed out, short body
            raise HubUnreachable(f"{type(exc).__name__} from {url}") from None

    def probe(self, timeout_s: float = 3.0) -> Probe:
        """Ask the hub's `GET /ping`: ok only when the answer names the hub's service.

        Also learns the hub's clock offset (its time minus ours, at the middle of the call).
        """
        started = time.time()
        try:
            answer = self._call("GET", "/ping", timeout_s=timeout_s)
        except HubUnreachable as exc:
            return Probe(False, str(exc))
        ended = time.time()
        if answer.status != 200 or not answer.from_hub or answer.data.get("service") != SERVICE:
            return Probe(False, answer.describe())
        offset = None
        raw = answer.data.get("time")
        if isinstance(raw, str):
            try:
                hub_time = dt.datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
                offset = hub_time - (started + ended) / 2
            except (ValueError, OverflowError):
                offset = None
        return Probe(True, "", offset)

    def ping(self, timeout_s: float = 3.0) -> bool:
        """True when the hub itself answers (not a captive portal): the link is up."""
        return self.probe(timeout_s).ok
