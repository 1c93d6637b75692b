"""Flask extensions, created unbound; create_app binds them."""

from flask import request, session
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

import ipam.models  # noqa: F401  (registers the tables on the metadata)
from ipam.db import Base

LANGUAGES = ("zh", "en")

# One session per request, committed once at its end: objects stay readable after the
# commit without a reload (a request never relies on seeing later changes by others).
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


def select_locale() -> str:
    """The language chosen in the session, else the browser's preference, else Chinese."""
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    best = request.accept_languages.best_match(["zh", "en"], default="zh")
    return "en" if best == "en" else "zh"


babel = Babel()
