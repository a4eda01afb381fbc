"""Every HubClient the unit makes trusts only the hub's pinned certificate ([kiosk]
hub_ca_file, written at enrolment): a caller that leaves out `ca_file` trusts any public CA,
so a captive portal or a forged hub with a bought certificate would get the unit's token.
(The unanswered-questions upload once did.)"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("firmware", "kiosk_ui", "posko", "assistant", "gateway", "models")


def hub_client_calls() -> list[tuple[str, int, ast.Call]]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "HubClient":
                    found.append((str(path.relative_to(ROOT)), node.lineno, node))
    return found


def test_every_hub_client_is_given_the_pinned_certificate() -> None:
    calls = hub_client_calls()
    assert len(calls) >= 6, calls  # the scan finds them (enrolment, kiosk, KB, updates, logins, log)
    missing = [f"{path}:{line}" for path, line, call in calls
               if not any(k.arg == "ca_file" for k in call.keywords)]
    assert missing == [], f"HubClient without ca_file (trusts any public CA): {missing}"

