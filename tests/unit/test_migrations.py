"""The schema comes only from the migrations, and they agree with the models."""

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from ipam.db import Base
from web import migrations_dir


def test_migrations_build_every_table(engine):
    names = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= names
    assert "alembic_version" in names


def test_models_and_migrations_agree(engine):
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


def test_one_head():
    config = Config()
    config.set_main_option("script_location", migrations_dir())
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1
