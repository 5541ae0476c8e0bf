"""Alembic environment of the service's own database (the audit log); run by service.audit.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config
connectable = config.attributes.get("connection")
if connectable is None:
    connectable = engine_from_config(config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.",
                                     poolclass=pool.NullPool)  # fmt: skip
    with connectable.connect() as connection:
        context.configure(connection=connection, version_table="dimflow_alembic_version")
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connectable, version_table="dimflow_alembic_version")
    with context.begin_transaction():
        context.run_migrations()
