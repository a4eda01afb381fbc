"""The central hub: report intake API, officer dashboard, fleet, alerts, talk groups, phones.

The Flask app is built by `hub.app.create_app`; `posko hub` (hub.cli) serves it.
"""
