"""Tanya Pak Polisi: the assistant brain (pure Python, no audio or hardware)."""
