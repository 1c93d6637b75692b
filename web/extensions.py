"""Flask extensions, created unbound; create_app binds them."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

import ipam.models  # noqa: F401  (registers the tables on the metadata)
from ipam.db import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
