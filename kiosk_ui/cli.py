"""`posko kiosk-ui` (serve the touchscreen app + sync worker) and `posko outbox` (maintenance)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys

import click
from gunicorn.app.base import BaseApplication

from kiosk_ui.app import create_app, default_token_provider
from kiosk_ui.outbox import NotFound, Outbox, outbox_dir
from kiosk_ui.sync import SyncWorker
from posko.config import load_settings
from posko.hubclient import HubClient, HubUnreachable


@click.command("kiosk-ui")
@click.option("--bind", default=None, help="host:port (default: [kiosk] bind and port).")
@click.option("--no-sync", is_flag=True, help="Do not run the sync worker (screens only).")
def kiosk_ui(bind: str | None, no_sync: bool) -> None:
    """Serve the kiosk touchscreen app with gunicorn (threads), plus its sync worker."""
    settings = load_settings()
    if no_sync:
        settings = settings.replace(kiosk=_replace(settings.kiosk, sync_enabled=False))
    address = bind or f"{settings.kiosk.bind}:{settings.kiosk.port}"
    # One worker process: the outbox writer, the sync worker and the MQTT link live in it;
    # threads serve the screens (each open live-update stream holds one).
    options = {
        "bind": address, "workers": 1, "worker_class": "gthread",
        "threads": settings.kiosk.threads, "timeout": 60, "graceful_timeout": 3,
        "keepalive": 5, "accesslog": None, "errorlog": "-",
        "loglevel": settings.posko.log_level.lower(), "proc_name": "posko-kiosk-ui",
        # gunicorn's control socket lives at one path per user: the hub's gunicorn on the same
        # machine would fight over it, and the kiosk has no use for it.
        "control_socket_disable": True,
    }

    class KioskApplication(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            return create_app(settings)

    click.echo(f"kiosk serving on http://{address}/", err=True)
    KioskApplication().run()


def _replace(section, **changes):
    return dataclasses.replace(section, **changes)


def _open_outbox():
    settings = load_settings()
    return settings, Outbox(outbox_dir(settings))


def _when(ts: float | None) -> str:
    if not ts:
        return "-"
    return dt.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")


@click.group("outbox")
def outbox() -> None:
    """Inspect and repair the kiosk's report outbox."""


@outbox.command("list")
@click.option("--state", type=click.Choice(["pending", "synced", "parked"]), default=None,
              help="Only reports in this state.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def outbox_list(state: str | None, as_json: bool) -> None:
    """Reports in the outbox, oldest first, with their state and last error."""
    _settings, box = _open_outbox()
    items = box.list(state)
    if as_json:
        for item in items:
            click.echo(json.dumps({"id": item.id, "ticket": item.ticket, "state": item.state,
                                   "attempts": item.attempts, "created_at": item.created_at,
                                   "photos": len(item.photos), "last_error": item.last_error}))
        return
    stats = box.stats()
    click.echo(f"{stats['pending']} pending (oldest {stats['oldest_pending_s'] / 60:.0f} min), "
               f"{stats['parked']} parked, {len(items)} listed")
    for item in items:
        why = item.parked_reason or item.last_error
        click.echo(f"{item.id}  {item.ticket}  {item.state:<7}  {_when(item.created_at)}  "
                   f"tries={item.attempts}  photos={len(item.photos)}" + (f"  {why}" if why else ""))


@outbox.command("show")
@click.argument("report_id")
@click.option("--reveal", is_flag=True, help="Show the reporter's name and phone and the PIN.")
def outbox_show(report_id: str, reveal: bool) -> None:
    """One report (by id or ticket): fields, photos, sync history. Personal data masked."""
    _settings, box = _open_outbox()
    try:
        item = box.get(report_id)
    except NotFound as exc:
        click.echo(f"posko outbox: {exc}", err=True)
        sys.exit(1)
    body = dict(item.body)
    if not reveal:
        body["pin"] = "****"
        if "reporter" in body:
            body["reporter"] = {k: "***" for k in body["reporter"]}
    click.echo(f"id        {item.id}\nticket    {item.ticket}\nstate     {item.state}"
               f"\ncreated   {_when(item.created_at)}\nattempts  {item.attempts}"
               f"\nnext try  {_when(item.next_attempt_at) if item.state == 'pending' else '-'}"
               f"\nposted    {'yes' if item.posted else 'no'}  hub state: {item.hub_state or '-'}"
               f"\nsynced    {_when(item.synced_at)}")
    if item.parked_reason:
        click.echo(f"parked    {item.parked_reason}")
    if item.last_error:
        click.echo(f"last err  {item.last_error}")
    for photo in item.photos:
        click.echo(f"photo     {photo['sha256']}  {photo['size']} bytes  "
                   f"{'uploaded' if photo['uploaded'] else 'not uploaded'}")
    click.echo(json.dumps(body, ensure_ascii=False, indent=2))


@outbox.command("retry")
@click.argument("report_id")
def outbox_retry(report_id: str) -> None:
    """Send a parked or waiting report again at the next sync pass."""
    _settings, box = _open_outbox()
    try:
        item = box.retry(report_id)
    except NotFound as exc:
        click.echo(f"posko outbox: {exc}", err=True)
        sys.exit(1)
    if item.state == "synced":
        click.echo(f"{item.id}: already synced; nothing to do")
    else:
        click.echo(f"{item.id}: queued for an immediate attempt (the running kiosk picks it up "
                   f"within its sync interval)")


@outbox.command("purge")
@click.option("--synced", "synced", is_flag=True, required=True,
              help="Delete synced reports (and their photos) older than the retention.")
@click.option("--older-than-days", type=float, default=None,
              help="Override [kiosk] retention_days for this purge (0 = every synced report).")
def outbox_purge(synced: bool, older_than_days: float | None) -> None:
    """Delete synced reports past the retention. Pending and parked reports are never purged."""
    settings, box = _open_outbox()
    days = settings.kiosk.retention_days if older_than_days is None else older_than_days
    if days < 0:
        raise click.BadParameter("must be >= 0", param_hint="--older-than-days")
    count = box.purge_synced(days * 86400.0)
    click.echo(f"purged {count} synced reports older than {days:g} days")


@outbox.command("reconcile")
@click.option("--days", type=float, default=2.0, show_default=True,
              help="Compare the synced reports made in the last this many days.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON line.")
def outbox_reconcile(days: float, as_json: bool) -> None:
    """Proof of delivery: compare synced reports' ids and digests with the hub's receipts.

    A report the hub lacks is queued again (the running kiosk sends it) and listed; exit
    status 1 when any was missing or differs, 2 when the hub cannot be asked.
    """
    if days <= 0:
        raise click.BadParameter("must be > 0", param_hint="--days")
    settings, box = _open_outbox()
    client = HubClient(settings.kiosk.hub_url, default_token_provider(settings), ca_file=settings.kiosk.hub_ca_file,
                       timeout_s=settings.kiosk.http_timeout_s)
    if not client.token():
        click.echo("posko outbox: this unit has no hub token (posko enroll)", err=True)
        sys.exit(2)
    try:
        summary = SyncWorker(box, client).reconcile(days)
    except HubUnreachable as exc:
        click.echo(f"posko outbox: the hub cannot be asked: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(f"{summary['checked']} synced reports of the last {days:g} days checked: "
                   f"{summary['at_hub']} at the hub, {summary['resent']} missing (queued again), "
                   f"{len(summary['mismatched'])} differ")
        for report_id in summary["missing"]:
            click.echo(f"missing   {report_id}  queued again")
        for report_id in summary["mismatched"]:
            click.echo(f"differs   {report_id}  the hub holds another body for this id")
    if summary["missing"] or summary["mismatched"]:
        sys.exit(1)
