"""The schema's Alembic revisions, shipped inside the wheel so an installed ipam can migrate.

`web.MIGRATIONS` finds this folder through the package, not through a path
next to the source tree.
"""
