"""The report workflow: states and the moves officers may make. Pure, no I/O.

baru → diverifikasi → ditindaklanjuti → selesai, and from any open state → ditolak with a
reason. "selesai" and "ditolak" are final.
"""

from __future__ import annotations

STATES = ("baru", "diverifikasi", "ditindaklanjuti", "selesai", "ditolak")
FORWARD = {"baru": "diverifikasi", "diverifikasi": "ditindaklanjuti", "ditindaklanjuti": "selesai"}
FINAL = ("selesai", "ditolak")
PRANK_REASON = "laporan palsu"


class BadTransition(ValueError):
    """A state change the workflow does not allow."""


def next_states(state: str) -> list[str]:
    """Where a report in `state` may go next (empty for final states)."""
    if state in FINAL:
        return []
    return [FORWARD[state], "ditolak"]


def check_transition(current: str, target: str, reason: str = "") -> None:
    """Raise BadTransition unless current → target is allowed (ditolak needs a reason)."""
    if target not in STATES:
        raise BadTransition(f"unknown state {target!r}")
    if target not in next_states(current):
        raise BadTransition(f"cannot move a report from {current} to {target}")
    if target == "ditolak" and not reason.strip():
        raise BadTransition("a rejection needs a reason")
