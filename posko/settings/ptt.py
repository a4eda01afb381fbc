"""Settings of push-to-talk talk groups (Ngobrol Kamtibmas): unit panel, codec, floor, recorder."""

from __future__ import annotations

from dataclasses import dataclass

from posko import topics
from posko.settings.fields import setting

MAX_SCAN = 4  # groups a unit may scan (ptt.scan)


@dataclass(frozen=True)
class PttSettings:
    """Talk group membership, the PTT panel's pins, audio, floor control and recordings."""

    group: str = setting("batang-kota", "Talk group this unit joins at start.")
    groups: list = setting(["batang-kota"], "Talk groups the next-group button cycles through (the start group is added if missing).")
    scan: list = setting([], "Talk groups this unit also listens to, highest priority first (at most 4, each one of group/groups, no repeats): a spurt in a higher group pre-empts playback of a lower one, which resumes when it ends. The selected group (group, then the next-group button) is always heard and comes first unless listed; the unit talks only in the selected group.")
    announce_max_age_s: int = setting(300, "A talk-group announcement older than this (by its time stamp, or waiting this long on the unit) is not spoken.", unit="s", min=10, max=86400)
    priority: str = setting("normal", "Floor priority this unit asks for; the arbiter caps it (see command_units, supervisor_units).", choices=("normal", "supervisor", "command", "emergency"))
    tx_timeout_s: int = setting(60, "A transmission is cut after this long so a stuck button cannot jam the group.", unit="s", min=1, max=600)
    half_duplex: bool = setting(True, "Mute the speaker while this unit transmits.")
    bitrate_bps: int = setting(16000, "Opus bit rate of a talker.", unit="bit/s", min=16000, max=24000)
    frame_ms: int = setting(20, "Opus frame length; one MQTT message carries one frame (10, 20, 40 or 60).", unit="ms", min=10, max=60)
    jitter_start_ms: int = setting(60, "Initial jitter-buffer delay of a listener; it adapts from there.", unit="ms", min=20, max=500)
    jitter_max_ms: int = setting(300, "Largest jitter-buffer delay the adaptation may reach.", unit="ms", min=40, max=2000)
    request_timeout_ms: int = setting(400, "A floor request with no answer from the arbiter within this long falls back to listen-before-talk.", unit="ms", min=50, max=5000)
    lbt_ms: int = setting(500, "Listen-before-talk: with no arbiter, talk after this much silence on the group.", unit="ms", min=100, max=5000)
    silence_release_ms: int = setting(2000, "Arbiter: release the floor when its holder has sent no audio for this long.", unit="ms", min=200, max=60000)
    command_units: list = setting(["command-center"], "Arbiter: MQTT users allowed command priority (the hub dashboard's user).")
    emergency_allowed: bool = setting(True, "Arbiter: any unit may claim emergency priority (its emergency button), which pre-empts even the command center, as in MCPTT; false caps an emergency claim like any other.")
    supervisor_units: list = setting([], "Arbiter: MQTT users allowed supervisor priority.")
    recordings_dir: str = setting("recordings", "Arbiter's recorder: where spurts are saved as Ogg Opus (relative to the state directory).")
    retention_days: int = setting(30, "Recorder: recordings older than this are deleted (0 keeps them forever).", unit="days", min=0, max=3650)
    arbiter_user: str = setting("arbiter", "MQTT user of the arbiter and recorder (its ACL lets it publish floor state).")
    ptt_pin: int = setting(17, "GPIO (BCM) of the push-to-talk button.", min=0, max=53)
    ptt_pull: str = setting("up", "PTT button's internal resistor: up (button to ground), down (button to 3.3 V), none (external).", choices=("up", "down", "none"))
    ptt_active: str = setting("low", "Level of the PTT pin while pressed; must be low with pull up and high with pull down.", choices=("low", "high"))
    cos_pin: int = setting(-1, "GPIO of a radio's squelch / COS output (through an optocoupler, hw/README.md): while it is active the radio's received audio is sent to the talk group, as if PTT were held; -1 for none.", min=-1, max=53)
    cos_active: str = setting("low", "Level of the COS pin while the radio's squelch is open: low with the optocoupler pulling the pin to ground (internal pull-up), high with it driving 3.3 V (internal pull-down).", choices=("low", "high"))
    next_group_pin: int = setting(27, "GPIO of the next-group button (same wiring as the PTT button); -1 for none.", min=-1, max=53)
    tx_led_pin: int = setting(22, "GPIO of the red TX LED; -1 for none.", min=-1, max=53)
    rx_led_pin: int = setting(23, "GPIO of the green RX LED; -1 for none.", min=-1, max=53)
    online_led_pin: int = setting(24, "GPIO of the online LED; -1 for none.", min=-1, max=53)
    buzzer_pin: int = setting(-1, "GPIO of an optional buzzer for tones; -1 for none.", min=-1, max=53)
    bounce_ms: int = setting(20, "Debounce time of the panel buttons.", unit="ms", min=0, max=500)
    # Phones and the dispatcher's console in the browser (hub/phone.py, hub/console.py).
    phone_broker_url: str = setting("ws://{host}:8080", "WebSocket URL of the broker's websockets listener for phones and the console. {host} is the hub's host as the browser reached it: followed by :port, the host name alone (the broker's own listener, dev); else with the hub's port (wss://{host}/mqtt: the deployment's nginx in front of the broker, the page's own origin and certificate; ./setup.sh hub writes it).")
    phone_member_days: int = setting(30, "Default validity of a phone member's enrolment.", unit="days", min=1, max=3650)
    phone_enrol_hours: int = setting(24, "A member's enrolment QR code can be scanned once within this long.", unit="h", min=1, max=720)
    broker_password_base: str = setting("", "Hashed Mosquitto password file of the deployment's own users (units, hub, arbiter); the hub writes it plus the phone members' entries to broker_password_file. Empty: the hub does not manage broker logins.")
    broker_password_file: str = setting("", "Password file Mosquitto reads (password_file); written by the hub on every enrolment and revocation.")
    broker_acl_file: str = setting("", "ACL file Mosquitto reads (acl_file); written by the hub from the membership and the phone members.")
    broker_pid_file: str = setting("", "Mosquitto's pid_file: the hub sends it SIGHUP to reload logins and ACL (a revoked member is disconnected at once).")
    member_expiry_check_s: float = setting(30.0, "How often the hub's ingest process rewrites the broker's password file and ACL when a phone member's validity has run out (the expired member is cut off without an officer doing anything).", unit="s", min=1.0, max=3600.0)
    console_password: str = setting("", "Broker password of the command-center user (ptt.command_units[0]) that the console's browser logs in with; empty on an anonymous broker.")

    def check(self) -> list[tuple[str, str]]:
        """Rules between keys, as (key, what is wrong); the loader names the key's source."""
        problems: list[tuple[str, str]] = []
        known = {self.group, *self.groups}
        if len(self.scan) > MAX_SCAN:
            problems.append(("scan", f"at most {MAX_SCAN} talk groups, found {len(self.scan)}"))
        seen: set[str] = set()
        for group in self.scan:
            try:
                topics.check_id("group", group)
            except ValueError as exc:
                problems.append(("scan", str(exc)))
                continue
            if group in seen:
                problems.append(("scan", f"talk group {group!r} is listed twice"))
            elif group not in known:
                problems.append(("scan", f"talk group {group!r} is not one of the unit's groups "
                                         f"(group, groups): {', '.join(sorted(known))}"))
            seen.add(group)
        return problems
