"""Security against real servers: the audit log on PostgreSQL is append-only for the service's own
database role; rate limits hold across two API processes sharing Redis, and still hold (per process)
with Redis stopped."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from dimflow.settings import Settings
from service.audit import AuditLog, Entry, grant_append_only
from service.auth import create_token
from tests.redis_server import redis_server
from tests.servers import free_port, stop, wait_until_answers

BIN = Path(sys.executable).parent
SECRET = "integration-security-key-0123456789abcdef012"
ROOT = Path(__file__).resolve().parents[2]
REFUSED = r"permission denied|append-only|must be owner"


def _auth(sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(sub, ['drawings:submit'], 600, Settings(jwt_secret=SECRET))}"}


def _psql(sql: str, db: str = "postgres") -> subprocess.CompletedProcess:
    return subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-c", sql],
                          capture_output=True, text=True, timeout=30)  # fmt: skip


@pytest.fixture
def pg_database() -> Iterator[str]:
    if not shutil.which("psql") or _psql("SELECT 1").returncode != 0:
        pytest.skip("PostgreSQL does not answer on 127.0.0.1:5432")
    name = f"dimflow_audit_{uuid.uuid4().hex[:8]}"
    assert _psql(f"CREATE DATABASE {name}").returncode == 0
    try:
        yield name
    finally:
        _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_on_postgresql_the_services_role_can_append_and_read_but_never_rewrite(pg_database: str) -> None:
    owner = AuditLog(f"postgresql://postgres@127.0.0.1:5432/{pg_database}")
    owner.migrate()
    owner.migrate()  # idempotent: every API start runs it
    role = f"dimflow_svc_{uuid.uuid4().hex[:6]}"
    assert _psql(f"CREATE ROLE {role} LOGIN").returncode == 0
    try:
        grant_append_only(owner.engine, role)
        service = AuditLog(f"postgresql://{role}@127.0.0.1:5432/{pg_database}")
        entry = Entry(action="submit", method="POST", route="/v1/jobs", status=202, client="10.0.0.9",
                      subject="alice", job_id="j-1", drawings=["ab" * 32], models={"detector": "3"})  # fmt: skip
        service.record(entry)
        assert service.tail(1)[0]["subject"] == "alice" and service.tail(1)[0]["models"] == {"detector": "3"}
        for sql in ("UPDATE audit_log SET status = 200", "DELETE FROM audit_log", "TRUNCATE audit_log",
                    "DROP TABLE audit_log", "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"):  # fmt: skip
            with pytest.raises(sa.exc.DatabaseError, match=REFUSED), service.engine.begin() as conn:
                conn.execute(sa.text(sql))
        for sql in ("UPDATE audit_log SET status = 200", "DELETE FROM audit_log"):  # not even its owner, by accident
            with pytest.raises(sa.exc.DatabaseError, match="append-only"), owner.engine.begin() as conn:
                conn.execute(sa.text(sql))
        assert len(owner.tail(10)) == 1
    finally:
        owner.engine.dispose()
        _psql(f"DROP OWNED BY {role}", pg_database)
        _psql(f"DROP ROLE IF EXISTS {role}")


def _api(env: dict[str, str], root: Path, name: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = root / f"{name}.log"
    proc = subprocess.Popen([str(BIN / "dimflow"), "-q", "api", "--port", str(port), "--workers", "0"], env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_until_answers(proc, f"{url}/healthz", name, 120, lambda: log.read_text(errors="replace"))
    return proc, url


def test_rate_limits_hold_across_two_api_processes_and_without_redis(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIMFLOW_", "PREFECT_"))}
    # refused uploads are enough to count against the limit: no Prefect, storage or worker is reached
    env.update(DIMFLOW_DATA_DIR=str(tmp_path / "data"), DIMFLOW_JWT_SECRET=SECRET, DIMFLOW_RATE_LIMIT_SUBMIT="6/minute",
               PREFECT_API_URL="http://127.0.0.1:9/api", PREFECT_HOME=str(tmp_path / "ph"),
               DIMFLOW_MLFLOW_TRACKING_URI=f"sqlite:///{ROOT / 'data' / 'mlflow' / 'mlflow.db'}")  # fmt: skip
    procs: list[subprocess.Popen] = []
    try:
        with redis_server(tmp_path) as (redis_url, redis_proc):
            env["DIMFLOW_REDIS_URL"] = redis_url
            (a, url_a), (b, url_b) = _api(env, tmp_path, "api-a"), _api(env, tmp_path, "api-b")
            procs += [a, b]
            auth = _auth("flood")

            def post(url: str, who: dict[str, str] = auth) -> httpx.Response:
                return httpx.post(f"{url}/v1/jobs", files={"file": ("x.png", b"")}, headers=who, timeout=30)

            codes = [post(url_a if i % 2 else url_b).status_code for i in range(10)]
            assert codes == [422] * 6 + [429] * 4, codes  # one budget for both processes
            r = post(url_a)
            assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60, r.headers
            stop(redis_proc)
        calm = _auth("calm")
        # Redis gone: each process limits alone, at most the limit each, never open-ended
        codes = [post(url_a, calm).status_code for _ in range(8)]
        assert codes == [422] * 6 + [429] * 2, codes
        metrics = httpx.get(f"{url_a}/metrics", timeout=30).text
        assert any(ln.startswith("dimflow_rate_limit_fallback_total") and float(ln.split()[-1]) >= 8
                   for ln in metrics.splitlines()), metrics  # fmt: skip
        assert a.poll() is None and b.poll() is None
    finally:
        for p in procs:
            stop(p, 20)
