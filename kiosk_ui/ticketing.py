"""Ticket codes and PINs made on the kiosk, in the format the hub's intake API fixes.

The rules are shared with the hub in `posko.tickets`; this module only adds the PIN
parsing the Cek Laporan screen needs.
"""

from __future__ import annotations

from posko.tickets import (
    ALPHABET,
    format_ticket,
    is_valid_pin,
    new_pin,
    new_ticket,
    normalise_phone,
    parse_ticket,
    phone_key,
)


def parse_pin(text: str) -> str:
    """The 4-digit PIN in `text` (surrounding spaces allowed); ValueError otherwise."""
    cleaned = (text or "").strip() if isinstance(text, str) else ""
    if not is_valid_pin(cleaned):
        raise ValueError("pin must be 4 digits")
    return cleaned


__all__ = ["ALPHABET", "format_ticket", "new_pin", "new_ticket", "normalise_phone",
           "parse_pin", "parse_ticket", "phone_key"]
