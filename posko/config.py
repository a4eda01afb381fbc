"""Load Posko's configuration: one TOML file plus `POSKO_*` environment overrides.

Where the file is: `$POSKO_CONFIG`, else `./posko.toml`, else `/etc/posko/posko.toml`;
with none of them the defaults apply (a dev stack keeping its state under `./var/`).

Environment overrides are named `POSKO_<SECTION>_<KEY>`, for example `POSKO_MQTT_PORT=1884`
or `POSKO_HUB_DATABASE_URL=...`. Every value is coerced to the field's type and checked
against its limits; the first bad value raises `ConfigError`, whose message is one line
naming the source, the key, what was expected and what was found.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posko.errors import PoskoError
from posko.settings.assistant import AssistantSettings
from posko.settings.core import BrokerSettings, MqttSettings, PoskoSettings
from posko.settings.hub import HubSettings
from posko.settings.kiosk import KioskSettings
from posko.settings.ptt import PttSettings
from posko.settings.unit import UnitSettings
from posko.settings.voice import VoiceSettings

ENV_PREFIX = "POSKO_"
DEFAULT_PATHS = (Path("posko.toml"), Path("/etc/posko/posko.toml"))

# Section name in the TOML file -> settings class. Order is the order `config show` prints.
SECTIONS: dict[str, type] = {
    "posko": PoskoSettings,
    "mqtt": MqttSettings,
    "broker": BrokerSettings,
    "hub": HubSettings,
    "kiosk": KioskSettings,
    "unit": UnitSettings,
    "assistant": AssistantSettings,
    "voice": VoiceSettings,
    "ptt": PttSettings,
}


class ConfigError(PoskoError, ValueError):
    """A configuration value is missing, unknown or of the wrong kind."""


@dataclass(frozen=True)
class Settings:
    """The whole effective configuration of one process."""

    source: str
    base_dir: Path
    posko: PoskoSettings
    mqtt: MqttSettings
    broker: BrokerSettings
    hub: HubSettings
    kiosk: KioskSettings
    unit: UnitSettings
    assistant: AssistantSettings
    voice: VoiceSettings
    ptt: PttSettings

    @property
    def state_dir(self) -> Path:
        """Absolute state directory (created on demand by the services, not here)."""
        path = Path(self.posko.state_dir).expanduser()
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    def resolve(self, value: str) -> Path:
        """A path from the configuration, relative ones taken from `base_dir`."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    def replace(self, **sections: Any) -> Settings:
        """A copy with some sections replaced (for tests and for `posko up`'s children)."""
        return dataclasses.replace(self, **sections)


def find_config_file(environ: typing.Mapping[str, str] | None = None) -> Path | None:
    """The configuration file this process uses, or None for built-in defaults.

    Raises ConfigError when `$POSKO_CONFIG` names a file that does not exist.
    """
    environ = os.environ if environ is None else environ
    named = environ.get("POSKO_CONFIG")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigError(f"{path}: POSKO_CONFIG names a file that does not exist")
        return path
    for path in DEFAULT_PATHS:
        if path.is_file():
            return path
    return None


def load_settings(
    path: Path | None = None, environ: typing.Mapping[str, str] | None = None
) -> Settings:
    """Read, merge and validate the configuration.

    `path` None means: find the file as described in the module docstring.
    Raises ConfigError on the first bad value.
    """
    environ = os.environ if environ is None else environ
    if path is None:
        path = find_config_file(environ)
    raw: dict[str, Any] = {}
    source = "built-in defaults"
    base_dir = Path.cwd()
    if path is not None:
        source = str(path)
        base_dir = path.resolve().parent
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None

    for name, value in raw.items():
        if name not in SECTIONS:
            raise ConfigError(
                f"{source}: [{name}]: unknown section; expected one of {', '.join(SECTIONS)}"
            )
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {name}: expected a [{name}] table, found {value!r}")

    built: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        built[name] = _build_section(name, cls, raw.get(name, {}), source, environ)
    _check_env_names(environ)
    return Settings(source=source, base_dir=base_dir, **built)


def _check_env_names(environ: typing.Mapping[str, str]) -> None:
    """A misspelt POSKO_* variable is an error, not a silently ignored setting."""
    for key in environ:
        if not key.startswith(ENV_PREFIX) or key == "POSKO_CONFIG":
            continue
        rest = key[len(ENV_PREFIX):].lower()
        section, _, field = rest.partition("_")
        cls = SECTIONS.get(section)
        if cls is None or field not in {f.name for f in dataclasses.fields(cls)}:
            if section in _RESERVED_ENV_SECTIONS:
                continue
            raise ConfigError(
                f"environment: {key}: unknown setting; expected POSKO_<SECTION>_<KEY> "
                f"with a section among {', '.join(SECTIONS)}"
            )


# POSKO_* variables that are not settings: the test harness's and tools' (test, dev), and the
# options of `posko watch` (POSKO_WATCH_START_TIMEOUT), which a slow machine sets for every
# service (systemd.setenv=) and so reaches every Posko process, not only the watcher.
_RESERVED_ENV_SECTIONS = {"test", "dev", "watch"}


def _build_section(
    name: str, cls: type, table: dict[str, Any], source: str,
    environ: typing.Mapping[str, str],
) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in table:
        if key not in fields:
            raise ConfigError(
                f"{source}: [{name}] {key}: unknown key; expected one of {', '.join(fields)}"
            )
    values: dict[str, Any] = {}
    wheres: dict[str, str] = {}
    for key, field in fields.items():
        env_key = f"{ENV_PREFIX}{name.upper()}_{key.upper()}"
        if env_key in environ:
            where, found, from_text = f"environment: {env_key}", environ[env_key], True
        elif key in table:
            where, found, from_text = f"{source}: [{name}] {key}", table[key], False
        else:
            continue
        wheres[key] = where
        values[key] = _coerce(where, found, hints[key], field.metadata, from_text)
    section = cls(**values)
    # Rules between keys of one section (a section's optional `check()`): the first problem
    # is reported where its key was set.
    for key, problem in getattr(section, "check", lambda: [])():
        raise ConfigError(f"{wheres.get(key, f'{source}: [{name}] {key}')}: {problem}")
    return section


def _coerce(where: str, found: Any, kind: Any, meta: typing.Mapping[str, Any], from_text: bool) -> Any:
    expected = _describe(kind, meta)
    origin = typing.get_origin(kind)

    def fail() -> typing.NoReturn:
        raise ConfigError(f"{where}: expected {expected}, found {found!r}")

    if kind is bool:
        if isinstance(found, bool):
            value: Any = found
        elif from_text and isinstance(found, str) and found.lower() in _BOOL_WORDS:
            value = _BOOL_WORDS[found.lower()]
        else:
            fail()
    elif kind is int:
        if isinstance(found, bool):
            fail()
        if isinstance(found, int):
            value = found
        elif from_text and isinstance(found, str):
            try:
                value = int(found.strip())
            except ValueError:
                fail()
        else:
            fail()
    elif kind is float:
        if isinstance(found, bool):
            fail()
        if isinstance(found, int | float):
            value = float(found)
        elif from_text and isinstance(found, str):
            try:
                value = float(found.strip())
            except ValueError:
                fail()
        else:
            fail()
    elif kind is str:
        if not isinstance(found, str):
            fail()
        value = found
    elif origin in (list, tuple) or kind in (list, tuple):
        if from_text and isinstance(found, str):
            found = [part.strip() for part in found.split(",") if part.strip()]
        if not isinstance(found, list):
            fail()
        if not all(isinstance(item, str) for item in found):
            fail()
        value = tuple(found) if (origin is tuple or kind is tuple) else list(found)
    elif isinstance(kind, types.UnionType):
        value = found
    else:  # pragma: no cover - a settings class used a type this loader does not know
        raise TypeError(f"unsupported settings type {kind!r} at {where}")

    low, high, choices = meta.get("min"), meta.get("max"), meta.get("choices")
    if low is not None and value < low:
        fail()
    if high is not None and value > high:
        fail()
    if choices and value not in choices:
        fail()
    return value


_BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True,
               "0": False, "false": False, "no": False, "off": False}


def _describe(kind: Any, meta: typing.Mapping[str, Any]) -> str:
    low, high, choices = meta.get("min"), meta.get("max"), meta.get("choices")
    if choices:
        return "one of " + ", ".join(repr(c) for c in choices)
    name = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        kind, "a list of strings"
    )
    if low is not None and high is not None:
        name += f" from {low:g} to {high:g}"
    elif low is not None:
        name += f" ≥ {low:g}"
    elif high is not None:
        name += f" ≤ {high:g}"
    if meta.get("unit"):
        name += f" ({meta['unit']})"
    return name


def as_toml(settings: Settings, *, mask_secrets: bool = True) -> str:
    """The effective configuration as TOML text, secrets masked, with each key's doc."""
    lines = [f"# effective configuration; source: {settings.source}",
             f"# state directory: {settings.state_dir}"]
    for name, cls in SECTIONS.items():
        section = getattr(settings, name)
        lines.append("")
        lines.append(f"[{name}]")
        for field in dataclasses.fields(cls):
            value = getattr(section, field.name)
            if field.metadata.get("secret") and mask_secrets and value:
                rendered = '"********"'
            else:
                rendered = _toml_value(value)
            doc = field.metadata.get("doc", "")
            unit = field.metadata.get("unit")
            comment = f"  # {doc}" + (f" [{unit}]" if unit else "") if doc else ""
            lines.append(f"{field.name} = {rendered}{comment}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def describe_keys() -> list[tuple[str, str, str, str]]:
    """(key, default, unit, doc) for every setting; the README's table is made from it."""
    rows = []
    for name, cls in SECTIONS.items():
        for field in dataclasses.fields(cls):
            default = field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
            rows.append((f"{name}.{field.name}", _toml_value(default),
                         field.metadata.get("unit") or "", field.metadata.get("doc", "")))
    return rows
