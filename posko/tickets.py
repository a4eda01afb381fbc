"""Ticket codes, PINs and phone numbers: the pure rules the kiosk and the hub share.

A ticket is 8 characters from an alphabet without look-alikes (no 0/O, 1/I/L), shown to
people as two groups of four ("K7QM-4TZP"). The PIN is 4 digits. Both are made on the
kiosk with `secrets`, because the kiosk may be offline when a resident submits.

Phone numbers are normalised to +62… so "0812-3456-789" and "+62 812 3456 789" are the
same person; `phone_key` is a keyed hash (HMAC-SHA256) so block lists can travel to kiosks
without the numbers themselves.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
TICKET_LENGTH = 8
PIN_LENGTH = 4

# Used with fullmatch: "^…$" with match() also accepts a trailing newline ("TJTJP9QB\n").
_TICKET_RE = re.compile(f"[{ALPHABET}]{{{TICKET_LENGTH}}}")
_PIN_RE = re.compile(r"[0-9]{4}")


def new_ticket() -> str:
    """A fresh random ticket code (8 characters of ALPHABET, no dash)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(TICKET_LENGTH))


def new_pin() -> str:
    """A fresh random 4-digit PIN (leading zeros kept)."""
    return f"{secrets.randbelow(10 ** PIN_LENGTH):0{PIN_LENGTH}d}"


def is_valid_ticket(value: object) -> bool:
    """True for exactly 8 characters of ALPHABET (canonical form: upper case, no dash)."""
    return isinstance(value, str) and _TICKET_RE.fullmatch(value) is not None


def is_valid_pin(value: object) -> bool:
    """True for exactly 4 ASCII digits."""
    return isinstance(value, str) and _PIN_RE.fullmatch(value) is not None


def format_ticket(ticket: str) -> str:
    """"K7QM4TZP" -> "K7QM-4TZP" (the form people read and type)."""
    if not is_valid_ticket(ticket):
        raise ValueError(f"not a ticket code: {ticket!r}")
    return f"{ticket[:4]}-{ticket[4:]}"


def parse_ticket(text: str) -> str:
    """What a person typed -> the canonical ticket: " k7qm-4tzp " -> "K7QM4TZP".

    Accepts lower case, spaces and the dash. Raises ValueError when the rest is not a ticket.
    """
    if not isinstance(text, str):
        raise ValueError("ticket must be text")
    cleaned = re.sub(r"[\s-]", "", text).upper()
    if not is_valid_ticket(cleaned):
        raise ValueError(f"not a ticket code: {text!r}")
    return cleaned


def normalise_phone(text: str) -> str:
    """An Indonesian phone number as +62…: "0812-3456-789" -> "+628123456789".

    Accepts spaces, dashes, dots and brackets; a leading 0, 62 or +62. Raises ValueError
    for anything else, or for fewer than 8 / more than 13 digits after the country code.
    """
    if not isinstance(text, str):
        raise ValueError("phone must be text")
    compact = re.sub(r"[\s\-.()]", "", text)
    if compact.startswith("+"):
        if not compact.startswith("+62"):
            raise ValueError("phone must be an Indonesian number (+62 or 0…)")
        national = compact[3:]
    elif compact.startswith("62"):
        national = compact[2:]
    elif compact.startswith("0"):
        national = compact[1:]
    else:
        raise ValueError("phone must start with 0, 62 or +62")
    if not national.isascii() or not national.isdigit():
        raise ValueError("phone may contain only digits, spaces and dashes")
    if national.startswith("0"):
        raise ValueError("phone has a 0 after the country code")
    if not 8 <= len(national) <= 13:
        raise ValueError("phone has the wrong number of digits")
    return "+62" + national


def phone_key(normalised: str, secret: str | bytes) -> str:
    """Keyed hash (HMAC-SHA256, hex) of a normalised phone number."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, normalised.encode("ascii"), hashlib.sha256).hexdigest()
