"""The posko command and the installer's contract."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

import posko
from posko.cli import HELP, cli
from posko.plugins import COMMANDS, MissingPackage, load, registered

ROOT = Path(__file__).resolve().parents[2]


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert posko.__version__ in result.output


def test_every_registered_command_is_listed_in_help_and_loads() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    commands = registered(COMMANDS)
    assert set(commands) == set(HELP)  # every entry point has its help line, and no stale one
    for name, ep in commands.items():
        assert name in result.output and HELP[name] in result.output
        assert load(ep).name == name  # a real click command of that name


def test_a_missing_third_party_package_is_named_and_our_own_import_errors_are_not_hidden() -> None:
    from importlib.metadata import EntryPoint

    missing = EntryPoint("hub", "flask_nowhere_to_be_found:cli", COMMANDS)
    try:
        load(missing, "hub")
    except MissingPackage as exc:
        assert "flask_nowhere_to_be_found" in str(exc) and "./setup.sh hub" in str(exc)
    else:
        raise AssertionError("a missing package must be reported")
    ours = EntryPoint("hub", "hub.no_such_module:cli", COMMANDS)
    try:
        load(ours)
    except MissingPackage:
        raise AssertionError("an ImportError inside Posko must not read as a missing package") from None
    except ModuleNotFoundError as exc:
        assert exc.name == "hub.no_such_module"


def test_setup_refuses_unknown_role() -> None:
    result = subprocess.run(["bash", str(ROOT / "setup.sh"), "bogus"], capture_output=True, text=True)
    assert result.returncode != 0
    assert "unknown role 'bogus'" in result.stderr


def test_setup_script_is_strict_and_valid_bash() -> None:
    text = (ROOT / "setup.sh").read_text()
    assert "set -euo pipefail" in text
    assert subprocess.run(["bash", "-n", str(ROOT / "setup.sh")]).returncode == 0


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "./setup.sh dev && .venv/bin/posko up" in readme
    assert "./setup.sh dev && .venv/bin/pytest" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./setup.sh dev" in ci and ".venv/bin/pytest" in ci


def test_python_m_posko_runs() -> None:
    result = subprocess.run([sys.executable, "-m", "posko", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and posko.__version__ in result.stdout


def _setup(*args: str) -> subprocess.CompletedProcess:
    """setup.sh with arguments it refuses before making any change (safe on this machine)."""
    return subprocess.run(["bash", str(ROOT / "setup.sh"), *args], capture_output=True, text=True, timeout=30)


def test_setup_roles_refuse_bad_options_before_changing_anything() -> None:
    assert "unknown option '--bogus'" in _setup("ptt", "--bogus").stderr
    assert "--tls-cert needs --tls-key" in _setup("hub", "--tls-cert", str(ROOT / "setup.sh")).stderr
    assert "for kiosk and ptt units" in _setup("hub", "--read-only-root").stderr
    assert "letters, digits and '-' only" in _setup("ptt", "--unit-id", "bad id;rm").stderr
    if subprocess.run(["sh", "-c", "command -v raspi-config"], capture_output=True).returncode != 0:
        assert "needs Raspberry Pi OS" in _setup("kiosk", "--read-only-root").stderr


def test_a_ptt_unit_gets_no_web_server_and_a_hub_no_desktop() -> None:
    ptt = _setup("packages", "ptt").stdout.split()
    hub = _setup("packages", "hub").stdout.split()
    kiosk = _setup("packages", "kiosk").stdout.split()
    assert "mosquitto" in ptt and "libopus0" in ptt
    assert not {"nginx", "chromium", "cage"} & set(ptt)
    assert "nginx" in hub and not {"chromium", "cage", "portaudio19-dev"} & set(hub)
    assert {"cage", "chromium"} <= set(kiosk) and "nginx" not in kiosk
    assert _setup("packages", "dev").stdout.split()[0] == "mosquitto"  # dev's list is unchanged


def _hub_config(tmp_path: Path) -> Path:
    """The posko.toml `setup.sh hub` writes (its write_config, with put_once writing to a file)."""
    out = tmp_path / "posko.toml"
    script = f"""
set -o pipefail
PYTHON={sys.executable}; ROLE=hub; ETC=/etc/posko; STATE=/var/lib/posko; UNIT_ID=; POSKO_NAME=; HUB_URL=
eval "$(grep -E '^BROKER_(BASE|DIR)=' '{ROOT / "setup.sh"}')"
put_once() {{ cat > '{out}'; }}
eval "$(sed -n '/^toml_quote()/p' '{ROOT / "setup.sh"}')"
eval "$(sed -n '/^write_config() {{/,/^}}/p' '{ROOT / "setup.sh"}')"
write_config not-a-real-password
"""
    subprocess.run(["bash", "-euc", script], check=True, timeout=30)
    return out


def test_the_hubs_config_points_phones_at_wss_through_nginx(tmp_path: Path) -> None:
    """Phones and the console reach the broker over wss://<hub>/mqtt (nginx), never ws://."""
    import tomllib

    from posko.config import load_settings

    path = _hub_config(tmp_path)
    assert tomllib.loads(path.read_text())["ptt"]["phone_broker_url"] == "wss://{host}/mqtt"
    assert load_settings(path, environ={}).ptt.phone_broker_url == "wss://{host}/mqtt"
    # the same [ptt] table says the hub manages the central broker's logins
    ptt = load_settings(path, environ={}).ptt
    assert ptt.broker_password_file == "/var/lib/posko-broker/units.passwd"
    assert ptt.broker_password_base == "/etc/posko/broker-base.passwd"
