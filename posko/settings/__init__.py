"""Typed, frozen settings: one dataclass per service, each field documented with its unit.

Each section lives in its own module so the team owning a service owns its settings.
`posko.config` gathers the sections, reads the TOML file and the `POSKO_*` environment,
and validates every value before any service starts.
"""
