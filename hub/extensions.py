"""Flask extensions shared by the hub's blueprints (made once, bound in `hub.app`)."""

from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
