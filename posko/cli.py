"""The `posko` command line.

Subcommands live with the package that owns them (entry points, see posko/plugins.py) and
are imported only when used, so `posko config show` on the hub never loads audio libraries.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from posko import __version__
from posko.config import ConfigError, as_toml, describe_keys, load_settings
from posko.errors import PoskoError
from posko.plugins import COMMANDS, load, registered

# One line of help per subcommand, shown by `posko --help` without importing the part.
HELP: dict[str, str] = {
    "up": "Run the whole dev stack: broker, hub, arbiter, one simulated kiosk.",
    "doctor": "Check this unit's broker, bridge, hub link and devices.",
    "hub": "The command center's hub: serve, units, users.",
    "enroll": "Enrol this unit with the hub using a one-time code.",
    "kiosk-ui": "Serve the kiosk touchscreen app and its sync worker.",
    "outbox": "Inspect and repair the kiosk's report outbox.",
    "unit": "Run the on-device agent (buttons, LEDs, voice, PTT).",
    "ask": "Ask the assistant a question from the command line.",
    "models": "Fetch, install, verify and warm speech models.",
    "arbiter": "Run the talk-group floor arbiter and recorder.",
    "ptt": "Push-to-talk terminal client.",
    "bench": "Benchmarks to run on a real unit.",
    "watch": "Run a service under systemd's watchdog (pings while it answers).",
    "status": "One screen: services, since when, restarts, release, update state.",
    "logs": "The journal of Posko's services, by part (unit, kiosk, hub, ...).",
}
# The role whose installer brings a subcommand's packages (for the missing-package message).
ROLE = {"hub": "hub", "arbiter": "hub", "kiosk-ui": "kiosk", "outbox": "kiosk", "unit": "kiosk",
        "ptt": "ptt", "bench": "kiosk", "models": "kiosk", "ask": "kiosk"}


class LazyGroup(click.Group):
    """A click group whose subcommands (entry points of `posko.commands`) load on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(registered(COMMANDS)))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        ep = registered(COMMANDS).get(cmd_name)
        return load(ep, ROLE.get(cmd_name, "")) if ep is not None else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """`posko --help` lists every subcommand by its help line, importing none of them."""
        own = self.commands  # defined here (config), not entry points
        rows = [(name, HELP.get(name, "")) for name in self.list_commands(ctx) if name not in own]
        rows += [(name, command.get_short_help_str(60)) for name, command in own.items()]
        with formatter.section("Commands"):
            formatter.write_dl(sorted(rows))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="posko")
def cli() -> None:
    """Posko: offline-first field system for Indonesian police posts."""


@cli.group()
def config() -> None:
    """Show and check the configuration."""


@config.command("show")
@click.option("--reveal-secrets", is_flag=True, help="Print secrets instead of masking them.")
def config_show(reveal_secrets: bool) -> None:
    """Print the effective configuration (file + POSKO_* overrides) as TOML."""
    settings = load_settings()
    click.echo(as_toml(settings, mask_secrets=not reveal_secrets), nl=False)


@config.command("check")
def config_check() -> None:
    """Validate the configuration and say where it came from."""
    settings = load_settings()
    click.echo(f"configuration OK ({settings.source})")


@config.command("keys")
@click.option("--markdown", is_flag=True, help="As the Markdown table the README carries.")
@click.option("--write-readme", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Replace the table between the config-keys markers of this README.")
def config_keys(markdown: bool, write_readme: str | None) -> None:
    """List every configuration key with its default, unit and meaning."""
    rows = describe_keys()
    if write_readme:
        table = "\n".join(["| key | default | unit | meaning |", "|---|---|---|---|"]
                          + [f"| `{k}` | `{d}` | {u} | {doc} |" for k, d, u, doc in rows])
        path = Path(write_readme)
        text = path.read_text()
        new = re.sub(r"<!-- config-keys:start -->.*<!-- config-keys:end -->",
                     lambda m: f"<!-- config-keys:start -->\n{table}\n<!-- config-keys:end -->",
                     text, flags=re.S)
        path.write_text(new)
        click.echo(f"{path}: {len(rows)} keys")
        return
    if markdown:
        click.echo("| key | default | unit | meaning |")
        click.echo("|---|---|---|---|")
        for key, default, unit, doc in rows:
            click.echo(f"| `{key}` | `{default}` | {unit} | {doc} |")
        return
    for key, default, unit, doc in rows:
        click.echo(f"{key} = {default}{f' [{unit}]' if unit else ''}  # {doc}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: turns Posko's own errors into one line and an exit code."""
    try:
        cli.main(args=argv, prog_name="posko", standalone_mode=False)
    except ConfigError as exc:
        click.echo(f"posko: configuration error: {exc}", err=True)
        sys.exit(2)
    except PoskoError as exc:
        click.echo(f"posko: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("posko: aborted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(0)
