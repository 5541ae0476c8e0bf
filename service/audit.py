"""The audit log: who did what to which drawing, one row per API request, append-only.

PostgreSQL in production (DIMFLOW_AUDIT_URL), a sqlite file in the data folder embedded. The table
is created by an alembic migration that also makes it append-only in the database itself: triggers
refuse UPDATE, DELETE (and TRUNCATE on PostgreSQL) whoever asks, and `grant_append_only` gives the
service's own role INSERT and SELECT only, so a compromised service cannot rewrite its history.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from dimflow.settings import Settings, get_settings

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
ACTIONS = ("submit", "read_status", "read_result", "token_refused", "rate_limited", "admin", "other")
_meta = sa.MetaData()
audit_log = sa.Table(
    "audit_log", _meta,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("subject", sa.String(256), nullable=False),
    sa.Column("tenant", sa.String(256)),
    sa.Column("client", sa.String(64), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("route", sa.String(256), nullable=False),
    sa.Column("status", sa.Integer(), nullable=False),
    sa.Column("job_id", sa.String(64)),
    sa.Column("drawings", sa.Text()),
    sa.Column("models", sa.Text()),
    sa.Column("detail", sa.Text()),
    sa.Column("request_id", sa.String(64), nullable=False),
)  # fmt: skip


def audit_url(settings: Settings | None = None) -> str:
    s = settings or get_settings()
    if s.audit_url:
        return s.audit_url
    path = s.data_dir.resolve() / "audit.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def engine_for(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 15})

        @sa.event.listens_for(engine, "connect")
        def _wal(dbapi_conn, _record) -> None:  # several API processes append to one file
            dbapi_conn.execute("PRAGMA journal_mode=WAL")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, connect_args={"connect_timeout": 5})


def migrate(engine: sa.Engine) -> None:
    """Bring the service's tables to the newest migration (idempotent; run at API start)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def grant_append_only(engine: sa.Engine, role: str) -> None:
    """On PostgreSQL, as the tables' owner: `role` (the service's login) may add and read audit rows
    and nothing else; run once when a plant sets the service up with its own database role."""
    if not role.replace("_", "").isalnum():
        raise ValueError(f"not a plain role name: {role!r}")
    with engine.begin() as conn:
        conn.execute(sa.text(f"REVOKE ALL ON audit_log FROM {role}"))
        conn.execute(sa.text(f"GRANT SELECT, INSERT ON audit_log TO {role}"))
        conn.execute(sa.text(f"GRANT USAGE ON SEQUENCE audit_log_id_seq TO {role}"))


@dataclass
class Entry:
    action: str
    method: str
    route: str
    status: int
    client: str
    subject: str = ""
    tenant: str | None = None
    job_id: str | None = None
    drawings: list[str] = field(default_factory=list)
    models: dict[str, str] | None = None
    detail: str | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def row(self) -> dict[str, Any]:
        return {"at": self.at, "subject": self.subject[:256], "tenant": self.tenant, "client": self.client[:64],
                "action": self.action, "method": self.method[:8], "route": self.route[:256], "status": self.status,
                "job_id": self.job_id, "drawings": ",".join(self.drawings) or None,
                "models": json.dumps(self.models, sort_keys=True) if self.models else None,
                "detail": (self.detail or None) and self.detail[:2000], "request_id": self.request_id}  # fmt: skip


class AuditLog:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = engine_for(url)

    def migrate(self) -> None:
        migrate(self.engine)

    def record(self, entry: Entry) -> None:
        with self.engine.begin() as conn:
            conn.execute(audit_log.insert().values(**entry.row()))

    def tail(self, limit: int = 50, since: datetime | None = None, subject: str | None = None,
             action: str | None = None, job_id: str | None = None,
             after_id: int | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """The newest `limit` entries (filtered; `after_id`: only those written after that one), oldest first."""
        q = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if since is not None:
            q = q.where(audit_log.c.at >= since)
        if after_id is not None:
            q = q.where(audit_log.c.id > after_id)
        for col, value in (("subject", subject), ("action", action), ("job_id", job_id)):
            if value is not None:
                q = q.where(audit_log.c[col] == value)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
        for r in rows:
            at = r["at"]
            r["at"] = (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()
            r["drawings"] = r["drawings"].split(",") if r["drawings"] else []
            r["models"] = json.loads(r["models"]) if r["models"] else None
        return rows[::-1]

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
