"""Posko."""
