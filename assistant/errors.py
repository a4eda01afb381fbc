"""Exceptions of the assistant brain."""

from __future__ import annotations

from posko.errors import PoskoError


class AssistantError(PoskoError):
    """Something went wrong in the assistant brain."""


class KbError(AssistantError, ValueError):
    """The knowledge base (or one of the brain's data files) is malformed.

    `problems` lists every problem found, each naming the file and the field.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        head = f"{len(self.problems)} problem(s) in the knowledge base"
        super().__init__(head + ":\n  " + "\n  ".join(self.problems))
