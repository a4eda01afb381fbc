"""The root of Posko's exceptions; each package derives its own from it."""


class PoskoError(Exception):
    """Something Posko reports to a person in one clear line."""
