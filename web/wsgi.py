"""The WSGI entry for production servers: `gunicorn 'web.wsgi:app'` (settings from the env)."""

from . import create_app

app = create_app()
