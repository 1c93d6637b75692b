"""The database extension, created unbound; create_app binds it. The web stack's extensions
(login, CSRF, rate limits, translations) are in webstack.py, loaded only to serve pages."""

from flask_sqlalchemy import SQLAlchemy

import ipam.models  # noqa: F401  (registers the tables on the metadata)
from ipam.db import Base

LANGUAGES = ("zh", "en")

# One session per request, committed once at its end: objects stay readable after the
# commit without a reload (a request never relies on seeing later changes by others).
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
