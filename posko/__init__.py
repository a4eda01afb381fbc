"""Posko: offline-first field system for Indonesian police posts."""

__version__ = "0.1.0"
