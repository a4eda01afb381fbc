"""Configuration: file, environment overrides, validation, masking."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from posko.config import ConfigError, as_toml, describe_keys, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "posko.toml"
    path.write_text(text)
    return path


def test_defaults_keep_state_under_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.source == "built-in defaults"
    assert settings.state_dir == tmp_path / "var"
    assert settings.broker.port != 1883  # never collides with a system broker


def test_file_values_and_relative_state_dir(tmp_path: Path) -> None:
    path = write(tmp_path, '[posko]\nstate_dir = "data"\nunit_id = "kiosk-7"\n[mqtt]\nport = 1999\n')
    settings = load_settings(path, environ={})
    assert settings.posko.unit_id == "kiosk-7"
    assert settings.mqtt.port == 1999
    assert settings.state_dir == tmp_path / "data"


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[mqtt]\nport = 1999\n")
    env = {"POSKO_MQTT_PORT": "2001", "POSKO_UNIT_ASSISTANT_ENABLED": "false",
           "POSKO_HUB_DATABASE_URL": "postgresql+psycopg://x@127.0.0.1/test"}
    settings = load_settings(path, environ=env)
    assert settings.mqtt.port == 2001
    assert settings.unit.assistant_enabled is False
    assert settings.hub.database_url.startswith("postgresql")


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""), environ={})
    with pytest.raises(AttributeError):
        settings.mqtt.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "env", "fragment"),
    [
        ("[mqtt]\nport = 70000\n", {}, "[mqtt] port: expected an integer from 1 to 65535, found 70000"),
        ('[mqtt]\nport = "abc"\n', {}, "[mqtt] port: expected an integer from 1 to 65535, found 'abc'"),
        ("[mqtt]\nprt = 1\n", {}, "[mqtt] prt: unknown key"),
        ("[mqttt]\n", {}, "[mqttt]: unknown section"),
        ('[posko]\nlanguage = "fr"\n', {}, "[posko] language: expected one of 'id', 'en', found 'fr'"),
        ("", {"POSKO_MQTT_PORT": "x"}, "environment: POSKO_MQTT_PORT: expected an integer"),
        ("", {"POSKO_UNIT_ASSISTANT_ENABLED": "maybe"}, "expected true or false, found 'maybe'"),
        ("", {"POSKO_MQTT_PROT": "1"}, "POSKO_MQTT_PROT: unknown setting"),
        ("[mqtt\n", {}, "not valid TOML"),
    ],
)
def test_bad_values_name_key_expected_and_found(tmp_path: Path, text: str, env: dict, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ=env)
    message = str(err.value)
    assert fragment in message
    assert "\n" not in message


def test_the_watchers_own_option_in_the_environment_is_no_unknown_setting(tmp_path: Path) -> None:
    """A slow machine sets POSKO_WATCH_START_TIMEOUT for every service (systemd.setenv=), so the
    hub, the ingest and the arbiter under `posko watch` or beside it see it too: it must not
    stop them as a misspelt setting."""
    path = write(tmp_path, "")
    load_settings(path, environ={"POSKO_WATCH_START_TIMEOUT": "900"})
    env = {"POSKO_CONFIG": str(path), "PATH": "/usr/bin:/bin", "POSKO_WATCH_START_TIMEOUT": "900"}
    result = subprocess.run([sys.executable, "-m", "posko", "config", "show"],
                            env=env, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_bad_value_exits_2_with_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[mqtt]\nport = 70000\n")
    env = {"POSKO_CONFIG": str(path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "posko", "config", "show"],
                            env=env, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and "[mqtt] port" in lines[0] and "70000" in lines[0]
    assert "Traceback" not in result.stderr


def test_missing_named_config_file_exits_2(tmp_path: Path) -> None:
    env = {"POSKO_CONFIG": str(tmp_path / "nope.toml"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "posko", "config", "show"],
                            env=env, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert "does not exist" in result.stderr


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, '[mqtt]\npassword = "s3cret-pw"\n[hub]\nsecret_key = "k3y"\n')
    env = {"POSKO_CONFIG": str(path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "posko", "config", "show"],
                            env=env, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "s3cret-pw" not in result.stdout and "k3y" not in result.stdout
    assert 'password = "********"' in result.stdout
    assert str(path) in result.stdout


def test_config_show_round_trips_as_toml(tmp_path: Path) -> None:
    import tomllib

    settings = load_settings(write(tmp_path, "[mqtt]\nport = 1999\n"), environ={})
    data = tomllib.loads(as_toml(settings))
    assert data["mqtt"]["port"] == 1999
    assert set(data) >= {"posko", "mqtt", "broker", "hub", "kiosk", "unit"}


def test_every_key_is_documented() -> None:
    for key, _default, _unit, doc in describe_keys():
        assert doc, f"{key} has no documentation"


def test_readme_lists_every_key() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [key for key, *_ in describe_keys() if f"`{key}`" not in readme]
    assert not missing, f"README's configuration table lacks: {missing}"
