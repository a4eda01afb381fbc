"""`python -m posko` is the `posko` command."""

from posko.cli import main

main()
