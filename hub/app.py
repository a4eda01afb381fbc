"""The hub's Flask app: `create_app(test_config=None)`, one blueprint per area (api, auth,
dashboard, fleet, alerts, live, talk groups, knowledge-base editor, phones, console)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Flask, render_template, request
from flask_login import current_user
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from hub import (
    alert_intake,
    alerts,
    api,
    auth,
    console,
    dashboard,
    db,
    export,
    fleet,
    kb_editor,
    kb_review,
    live,
    phone,
    releases,
    talkgroups,
    unanswered,
    users,
)
from hub import map as map_page
from hub.batch import ReportBatcher
from hub.extensions import csrf
from hub.migrate import upgrade
from hub.secrets_store import ensure_secrets, secret_key_file
from hub.texts import label, texts
from hub.timefmt import local
from posko.config import load_settings


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """The hub's Flask app. test_config may hold POSKO_SETTINGS (a posko.config.Settings),
    DATABASE_URL, AUTO_MIGRATE and any Flask setting."""
    test_config = dict(test_config or {})
    settings = test_config.pop("POSKO_SETTINGS", None) or load_settings()
    hub = settings.hub
    app = Flask("hub")  # the package: templates and static files are found beside it
    app.config.update(
        POSKO_SETTINGS=settings,
        SECRET_KEY=hub.secret_key or secret_key_file(settings.state_dir / "hub" / "secret-key"),
        SESSION_COOKIE_SECURE=hub.session_cookie_secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="posko_hub",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=hub.session_hours),
        # A form's token lives as long as the session it belongs to (which the hub ends
        # server-side): a dashboard kept open through a shift, its session extended, must
        # still be able to acknowledge an alert at hour 13.
        WTF_CSRF_TIME_LIMIT=None,
        MAX_CONTENT_LENGTH=max(hub.photo_max_bytes, hub.report_max_bytes),
        DATABASE_URL=db.database_url(settings),
        AUTO_MIGRATE=False,
        JSON_SORT_KEYS=False,
    )
    app.config.update(test_config)
    if app.config["AUTO_MIGRATE"]:
        upgrade(app.config["DATABASE_URL"])
    if hub.proxy_hops:  # the client address the throttles count by is the proxy's X-Forwarded-For
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hub.proxy_hops, x_proto=hub.proxy_hops)
    db.init_app(app, app.config["DATABASE_URL"], hub.sqlite_synchronous)
    ensure_secrets(app.extensions["posko_db"].engine)
    app.extensions["posko_batcher"] = ReportBatcher(app.extensions["posko_db"])

    csrf.init_app(app)
    csrf.exempt(api.bp)
    auth.login_manager.init_app(app)
    auth.warm()
    for blueprint in (api.bp, auth.bp, dashboard.bp, export.bp, map_page.bp, fleet.bp, alerts.bp,
                      live.bp, talkgroups.bp, users.bp, kb_editor.bp, kb_review.bp, unanswered.bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(alert_intake.bp)  # POST /api/v1/alerts
    app.register_blueprint(releases.bp)  # Posko releases for units
    app.register_blueprint(phone.bp)  # /hp/: the phone app, enrolment by QR
    app.register_blueprint(console.bp)  # /konsol: the dispatcher's console
    csrf.exempt(phone.redeem)  # the one-time token is the phone's proof; it has no session

    def local_time(value: dt.datetime | None, fmt: str = "%d-%m-%Y %H:%M") -> str:
        return local(value, hub.display_tz, fmt)

    app.jinja_env.filters["local"] = local_time
    app.jinja_env.globals.update(label=label, posko_name=settings.posko.posko_name,
                                 tz_name=hub.display_tz)

    @app.context_processor
    def _nav() -> dict[str, Any]:
        def open_alerts() -> list:
            if not current_user.is_authenticated:
                return []
            return alerts.open_alerts(db.get_db())

        return {"open_alerts": open_alerts}

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if request.path.startswith("/api/"):
            return api.api_http_error(exc)
        code = exc.code or 500
        if code >= 500 or code == 401:
            return exc
        return render_template("error.html", code=code,
                               text=label("errors", str(code)) if str(code) in _error_codes() else exc.name), code

    @app.after_request
    def _headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; frame-ancestors 'none'")
        return response

    return app


def _error_codes() -> set[str]:
    return set(texts().get("errors", {}))
