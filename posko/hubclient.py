"""HTTP calls from a unit (the kiosk, the knowledge-base updater) to the hub's API (`/api/v1`).

Every call returns an `Answer` (status and parsed body) or raises `HubUnreachable` for a
connection that failed, was cut or timed out; the sync worker and the Cek Laporan screen
decide what that means.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from posko.errors import PoskoError


class HubUnreachable(PoskoError, ConnectionError):
    """The hub could not be reached, or the connection broke before its answer."""


@dataclass(frozen=True)
class Answer:
    status: int
    data: Any  # parsed JSON, or None
    text: str  # the body as text (for reasons shown to maintainers)

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
            resp = self.session.request(method, self.base + path, data=data, params=params,
                                        headers=headers, timeout=timeout_s or self.timeout_s,
                                        verify=self.verify)
            text = resp.text
        except requests.RequestException as exc:
            raise HubUnreachable(f"{type(exc).__name__}: {exc}") from None
        try:
            parsed = resp.json()
        except ValueError:
            parsed = None
        return Answer(resp.status_code, parsed, text[:2000])

    def post_report(self, body: bytes) -> Answer:
        return self._call("POST", "/reports", data=body, content_type="application/json")

    def put_photo(self, sha256: str, data: bytes) -> Answer:
        return self._call("PUT", f"/photos/{sha256}", data=data, content_type="image/jpeg")

    def ticket(self, ticket: str, pin: str, timeout_s: float | None = None) -> Answer:
        return self._call("GET", f"/tickets/{quote(ticket, safe='')}", params={"pin": pin},
                          timeout_s=timeout_s)

    def blocked_phones(self) -> Answer:
        return self._call("GET", "/blocked-phones")

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

    def ping(self, timeout_s: float = 3.0) -> bool:
        """True when the hub answers HTTP at all (any status): the link is up."""
        try:
            self._call("GET", "/openapi.json", timeout_s=timeout_s)
        except HubUnreachable:
            return False
        return True
