"""firmware/bridge_conf.py, the root-side tool that writes a unit's broker login into its
bridge configuration: only a login of the bridge's own unit, with a password that cannot
carry anything else into Mosquitto's configuration, and applying it twice changes nothing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from firmware import bridge_conf
from posko.broker import deployment_files

SHIPPED = deployment_files()["posko-unit.conf"].replace("UNIT_ID", "ptt-01")  # as setup.sh installs it
PASSWORD = "Zx3_k-" * 5


def test_the_login_goes_into_the_bridge_once() -> None:
    assert "remote_password" not in SHIPPED  # no password before enrolment
    done = bridge_conf.with_login(SHIPPED, "ptt-01", PASSWORD)
    assert f"remote_username ptt-01\nremote_password {PASSWORD}\ntopic " in done
    assert bridge_conf.with_login(done, "ptt-01", PASSWORD) == done
    newer = bridge_conf.with_login(done, "ptt-01", "N" * 32)
    assert newer.count("remote_password") == 1 and PASSWORD not in newer
    assert newer.splitlines()[:20] == done.splitlines()[:20]  # the rest is left as it was


def test_another_units_login_or_an_unsafe_password_is_refused() -> None:
    with pytest.raises(bridge_conf.BadLogin, match="belongs to ptt-01"):
        bridge_conf.with_login(SHIPPED, "ptt-02", PASSWORD)
    for text in (json.dumps({"user": "ptt-01", "password": PASSWORD + "\nplugin /tmp/x.so"}),
                 json.dumps({"user": "ptt-01", "password": "short"}),
                 json.dumps({"user": "ptt 01", "password": PASSWORD}), "not json"):
        with pytest.raises(bridge_conf.BadLogin):
            bridge_conf.parse_login(text)
    with pytest.raises(bridge_conf.BadLogin, match="one bridge"):
        bridge_conf.with_login("listener 1883\n", "ptt-01", PASSWORD)


def test_apply_rewrites_the_file_0640_and_main_waits_for_enrolment(tmp_path: Path, capsys) -> None:
    conf, login = tmp_path / "posko-unit.conf", tmp_path / "broker-login.json"
    conf.write_text(SHIPPED)
    assert bridge_conf.main(["apply", str(login), str(conf)]) == 0  # not enrolled yet
    assert "nothing to do" in capsys.readouterr().out and conf.read_text() == SHIPPED
    login.write_text(json.dumps({"user": "ptt-01", "password": PASSWORD, "login": "abc"}))
    assert bridge_conf.main(["apply", str(login), str(conf)]) == 0
    assert conf.stat().st_mode & 0o777 == 0o640 and f"remote_password {PASSWORD}" in conf.read_text()
    assert bridge_conf.main(["apply", str(login), str(conf)]) == 0
    assert "already has it" in capsys.readouterr().out
    login.write_text(json.dumps({"user": "ptt-02", "password": PASSWORD}))
    assert bridge_conf.main(["apply", str(login), str(conf)]) == 1
    assert bridge_conf.main(["apply"]) == 2


def test_a_login_kept_during_the_restart_is_applied_too(tmp_path: Path, monkeypatch, capsys) -> None:
    """systemd does not watch the login file while posko-bridge-login.service runs: a login
    the agent keeps while Mosquitto restarts for the previous one must not be left behind."""
    conf, login = tmp_path / "posko-unit.conf", tmp_path / "broker-login.json"
    conf.write_text(SHIPPED)
    login.write_text(json.dumps({"user": "ptt-01", "password": PASSWORD, "login": "first"}))
    newer = "Nw" * 16
    # The "restart": the first time, the agent keeps a newer login meanwhile.
    keeps = (f"import json, pathlib; p = pathlib.Path({str(login)!r}); m = p.with_suffix('.kept')\n"
             f"if not m.exists(): m.touch(); p.write_text(json.dumps({{'user': 'ptt-01', 'password': {newer!r}}}))")
    monkeypatch.setattr(bridge_conf, "RESTART", [sys.executable, "-c", keeps])
    assert bridge_conf.main(["apply", str(login), str(conf), "--restart"]) == 0
    assert f"remote_password {newer}\n" in conf.read_text() and PASSWORD not in conf.read_text()
    out = capsys.readouterr().out
    assert out.count("-> exit 0") == 2 and "a newer login was kept meanwhile" in out, out
    # No newer login: one restart.
    assert bridge_conf.main(["apply", str(login), str(conf), "--restart"]) == 0
    assert "already has it" in capsys.readouterr().out


def test_it_runs_with_the_system_python_alone() -> None:
    """Installed as /usr/local/lib/posko/bridge_conf.py and run with `python3 -I`: no Posko import."""
    source = Path(bridge_conf.__file__).read_text()
    assert "from posko" not in source and "import posko" not in source and "from firmware" not in source
