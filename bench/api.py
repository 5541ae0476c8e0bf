"""The service end to end on loopback: submit -> result latency and throughput, against the same
drawings processed in-process, so the service's overhead reads as a difference and a ratio.

.venv/bin/python bench/api.py [--n 12] [--sheet A4] [--dpi 200] [--workers 2]

Starts what it needs: a Prefect server on the machine's PostgreSQL (a fresh database; sqlite if
PostgreSQL does not answer, or PREFECT_API_URL when set), a private redis-server, and `dimflow api`
with warm workers, all on 127.0.0.1; storage and caches are empty. N distinct drawings go one
after another, then N more at concurrency 4 and N more at 8 (each phase its own drawings, so no
phase is answered from a cache), then the first phase's drawings again (cache hits). This machine's
speed drifts, so each phase's drawings also run in this process's warm models, beside the service's
jobs (sequential: alternately just before and just after each job) or just before the phase
(concurrent): each ratio compares like with like.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from process import drawings  # bench/process.py: this folder is on sys.path when run as a script

from dimflow.settings import configure_environment
from service.prefect_server import SERVER_ENV

configure_environment()
ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout_s: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{url}: the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not answer within {timeout_s:.0f} s") from None
            time.sleep(0.3)


def postgres_url() -> str | None:
    """A fresh database on the machine's PostgreSQL, or None when it does not answer."""
    if not shutil.which("psql"):
        return None
    name = f"dimflow_bench_{uuid.uuid4().hex[:8]}"
    for user in ("postgres", "root"):
        r = subprocess.run(["psql", "-h", "127.0.0.1", "-U", user, "-d", "postgres", "-c", f"CREATE DATABASE {name}"],
                           capture_output=True, text=True, timeout=30)  # fmt: skip
        if r.returncode == 0:
            return f"postgresql+asyncpg://{user}@127.0.0.1:5432/{name}"
    return None


class InProcess:
    """The same drawings in this one warm process: load, models, merge, the three outputs, as a worker
    does them without the service around it."""

    def __init__(self, warm: Path) -> None:
        from dimflow import champions

        self.models = champions.get_models()
        self.ms(warm)

    def ms(self, f: Path) -> float:
        from dimflow import inputs as dio
        from dimflow import report, stages
        from dimflow.schema import drawing_id

        t = time.perf_counter()
        data = f.read_bytes()
        page = dio.load_pages(data, f.name)[0]
        result = stages.process_page(self.models, page.gray, stages.loose_page(page.gray, str(f), page.dpi,
                                                                               drawing_id(data)))  # fmt: skip
        report.balloon_png(page.gray, result)
        report.inspection_csv(result)
        result.to_json()
        return (time.perf_counter() - t) * 1000


_clients = threading.local()


JOBS: list[tuple[str, float, float]] = []  # job id, wall clock at submit and at result, sequential phase


def one_job(api: str, token: str, f: Path, timeline: bool = False) -> tuple[float, str | None]:
    """Submit -> result for one drawing, on this thread's long-lived client (as an integration keeps one)."""
    from dimflow.client import Client

    if getattr(_clients, "c", None) is None:
        _clients.c = Client(api, token)
    c = _clients.c
    t, wall = time.perf_counter(), time.time()
    try:
        job = c.submit([f])
        st = c.wait(job.job_id, timeout_s=300)
        if st.status != "completed":
            return (time.perf_counter() - t) * 1000, f"{st.status}: {st.error}"
        results = c.results(job.job_id)
        if not results or "dimensions" not in results[0]:
            return (time.perf_counter() - t) * 1000, "no result"
        if timeline:
            JOBS.append((job.job_id, wall, time.time()))
    except Exception as exc:
        return (time.perf_counter() - t) * 1000, f"{type(exc).__name__}: {exc}"
    return (time.perf_counter() - t) * 1000, None


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


class CpuMeter:
    """CPU seconds spent by each part of the stack during a phase: the Prefect server, the API
    process, its worker processes, Redis (psutil, by process tree; PostgreSQL's backends come and
    go with their connections, so their time cannot be read this way)."""

    def __init__(self, prefect_pid: int | None, api_pid: int, redis_pid: int) -> None:
        self.prefect, self.api, self.redis = prefect_pid, api_pid, redis_pid

    @staticmethod
    def _cpu(proc) -> float:
        try:
            t = proc.cpu_times()
            return t.user + t.system
        except Exception:  # gone: its time is lost either way
            return 0.0

    def read(self) -> dict[str, float]:
        import psutil

        out = dict.fromkeys(("prefect", "api", "workers", "redis"), 0.0)
        for name, pid in (("prefect", self.prefect), ("api", self.api), ("redis", self.redis)):
            if pid is None:
                continue
            try:
                root = psutil.Process(pid)
            except psutil.NoSuchProcess:
                continue
            out[name] += self._cpu(root)
            for child in root.children(recursive=True):
                worker = name == "api" and "spawn_main" in " ".join(child.cmdline())
                out["workers" if worker else name] += self._cpu(child)
        return out

    def since(self, before: dict[str, float], jobs: int) -> dict[str, float]:
        now = self.read()
        return {k: round((now[k] - before[k]) / jobs, 3) for k in now}


METER: CpuMeter | None = None


def phase(api: str, token: str, files: list[Path], concurrency: int, inproc: InProcess | None = None) -> dict:
    """One phase's drawings through the service. With `inproc`, the same drawings in-process right
    before (concurrent phases) or beside each one (sequential: alternately first and second), so a
    machine whose speed drifts compares like with like."""
    paired: list[float] = []
    if inproc is not None and concurrency > 1:
        paired = [inproc.ms(f) for f in files]
    cpu0 = METER.read() if METER is not None and concurrency > 1 else None
    t = time.perf_counter()
    if concurrency == 1:
        got = []
        for i, f in enumerate(files):
            if inproc is not None and i % 2 == 0:
                paired.append(inproc.ms(f))
            got.append(one_job(api, token, f, timeline=inproc is not None))
            if inproc is not None and i % 2 == 1:
                paired.append(inproc.ms(f))
        wall = sum(ms for ms, _ in got) / 1000
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            got = list(pool.map(lambda f: one_job(api, token, f), files))
        wall = time.perf_counter() - t
    cpu = METER.since(cpu0, len(files)) if cpu0 is not None else None
    ms = [x for x, _ in got]
    errors = [e for _, e in got if e]
    row = {"n": len(files), "p50_ms": round(statistics.median(ms), 1), "p95_ms": round(pct(ms, 0.95), 1),
           "max_ms": round(max(ms), 1), "per_s": round(len(files) / wall, 3), "errors": len(errors),
           "first_error": errors[0] if errors else None, "cpu_s_per_job": cpu}  # fmt: skip
    if paired:
        row.update(in_p50_ms=round(statistics.median(paired), 1), in_p95_ms=round(pct(paired, 0.95), 1),
                   in_per_s=round(1000 / statistics.mean(paired), 3), in_ms=[round(x) for x in paired],
                   ms=[round(x) for x in ms])  # fmt: skip
        if concurrency == 1:
            row["diff_p50_ms"] = round(statistics.median([s - i for s, i in zip(ms, paired, strict=True)]), 1)
    return row


def timeline(prefect_api: str) -> dict[str, float]:
    """Where the sequential jobs' time went, median ms, from their Prefect runs: submission until
    the run exists (upload checks, storing, creating it), until it runs (wake-up, claim), the run
    (of which its task runs), and from its end until the client has the result."""
    import httpx
    from dateutil.parser import isoparse

    ids = [j for j, _, _ in JOBS]
    with httpx.Client(base_url=prefect_api, timeout=30) as h:
        flows = {r["id"]: r for r in h.post("/flow_runs/filter", json={"flow_runs": {"id": {"any_": ids}}}).json()}
        tasks = h.post("/task_runs/filter", json={"flow_runs": {"id": {"any_": ids}}, "limit": 200}).json()
    by_flow: dict[str, float] = {}
    rows: dict[str, list[float]] = {}
    for t in tasks:
        by_flow[t["flow_run_id"]] = by_flow.get(t["flow_run_id"], 0.0) + 1000 * (t["total_run_time"] or 0.0)
        rows.setdefault(f"task {t['name'].rsplit('-', 1)[0]}", []).append(1000 * (t["total_run_time"] or 0.0))
    for job_id, sent, got in JOBS:
        r = flows[job_id]
        created, start, end = (isoparse(r[k]).timestamp() for k in ("created", "start_time", "end_time"))
        for k, v in (("submit -> run created", created - sent), ("created -> running", start - created),
                     ("run", end - start), ("run: its task runs", by_flow.get(job_id, 0.0) / 1000),
                     ("run ended -> result at client", got - end)):  # fmt: skip
            rows.setdefault(k, []).append(v * 1000)
    return {k: round(statistics.median(v), 1) for k, v in rows.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12, help="drawings per phase")
    ap.add_argument("--sheet", default="A4")
    ap.add_argument("--dpi", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2, help="warm worker processes of the service")
    ap.add_argument("--prefect-env", action="append", default=[], metavar="KEY=VALUE",
                    help="a setting for the Prefect server the bench starts (e.g. "
                         "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED=false); repeatable")  # fmt: skip
    ap.add_argument("--prefect-nice", type=int, default=10,
                    help="CPU niceness of the Prefect server it starts (the embedded server's: 10)")  # fmt: skip
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dimflow-bench-api-"))
    seeds = {"sequential": 9301, "c4": 9302, "c8": 9303}
    sets = {k: drawings(args.sheet, args.dpi, args.n, work, seed) for k, seed in seeds.items()}
    inproc = InProcess(drawings(args.sheet, args.dpi, 1, work, 9300)[0])  # models loaded before the servers start
    procs: list[subprocess.Popen] = []
    env = dict(os.environ)
    registry = env.get("DIMFLOW_MLFLOW_TRACKING_URI") or f"sqlite:///{ROOT / 'data' / 'mlflow' / 'mlflow.db'}"
    env.update(DIMFLOW_DATA_DIR=str(work / "data"), DIMFLOW_MLFLOW_TRACKING_URI=registry,
               DIMFLOW_STORAGE_URL=str(work / "store"), DIMFLOW_WORKERS=str(args.workers),
               PREFECT_LOCAL_STORAGE_PATH=str(work / "prefect-results"), PREFECT_HOME=str(work / "prefect-home"),
               PREFECT_LOGGING_LEVEL="WARNING")  # fmt: skip
    db = "given"
    try:
        if not env.get("PREFECT_API_URL"):
            pg = postgres_url()
            db = "postgresql" if pg else "sqlite"
            server_env = SERVER_ENV | env | dict(kv.split("=", 1) for kv in args.prefect_env)  # as the service's
            if pg:
                server_env["PREFECT_API_DATABASE_CONNECTION_URL"] = pg
            port = free_port()
            procs.append(subprocess.Popen(["nice", "-n", str(args.prefect_nice), str(VENV_BIN / "prefect"), "server",
                                           "start", "--host", "127.0.0.1", "--port", str(port)], env=server_env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))  # fmt: skip
            env["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
            wait_http(f"{env['PREFECT_API_URL']}/health", 180, procs[-1])
        rport = free_port()
        procs.append(subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(rport), "--save", "",
                                       "--appendonly", "no"], stdout=subprocess.DEVNULL))  # fmt: skip
        env["DIMFLOW_REDIS_URL"] = f"redis://127.0.0.1:{rport}/0"
        aport = free_port()
        api = f"http://127.0.0.1:{aport}"
        log = (work / "api.log").open("wb")
        procs.append(subprocess.Popen([str(VENV_BIN / "dimflow"), "-q", "api", "--port", str(aport)], env=env,
                                      stdout=log, stderr=subprocess.STDOUT))  # fmt: skip
        wait_http(f"{api}/healthz", 120, procs[-1])
        deadline = time.monotonic() + 180
        while json.loads(urllib.request.urlopen(f"{api}/readyz", timeout=10).read())["checks"]["workers"] != "ok":
            if time.monotonic() > deadline:
                raise SystemExit("workers not ready in 180 s; see " + str(work / "api.log"))
            time.sleep(0.5)
        token = subprocess.run([str(VENV_BIN / "dimflow"), "-q", "token", "create", "--sub", "bench"], env=env,
                               capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]  # fmt: skip
        global METER
        METER = CpuMeter(procs[0].pid if db != "given" else None, procs[-1].pid, procs[-2].pid if db != "given"
                         else procs[0].pid)  # fmt: skip
        for f in drawings(args.sheet, args.dpi, args.workers * 2, work, 9300):  # warm every worker's first run
            one_job(api, token, f)
        rows = {"sequential": phase(api, token, sets["sequential"], 1, inproc),
                "concurrency 4": phase(api, token, sets["c4"], 4, inproc),
                "concurrency 8": phase(api, token, sets["c8"], 8, inproc),
                "resubmitted (cache)": phase(api, token, sets["sequential"], 1)}  # fmt: skip
        metrics = urllib.request.urlopen(f"{api}/metrics", timeout=10).read().decode()
        spent = timeline(env["PREFECT_API_URL"])
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
    server = f"{db} at nice {args.prefect_nice} {' '.join(args.prefect_env)}".strip()
    print(f"{args.sheet} at {args.dpi} dpi, {args.n} drawings a phase, {args.workers} workers, "
          f"Prefect on {server}, {os.cpu_count()} cores; in-process: the same drawings in one warm process, "
          "beside each service job (sequential) or just before the phase (concurrent)")  # fmt: skip
    print("| phase | n | P50 ms | P95 ms | max ms | jobs/s | in-process P50 / P95 ms | in-process jobs/s "
          "| x in-process rate | errors |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        inp = f"{r['in_p50_ms']:.0f} / {r['in_p95_ms']:.0f}" if "in_p50_ms" in r else "-"
        ratio = f"{r['per_s'] / r['in_per_s']:.2f}" if "in_per_s" in r else "-"
        print(f"| {name} | {r['n']} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['max_ms']:.0f} | {r['per_s']} | "
              f"{inp} | {r.get('in_per_s', '-')} | {ratio} | {r['errors']} |")  # fmt: skip
    seq = rows["sequential"]
    print(f"sequential: P95 - in-process P95: {seq['p95_ms'] - seq['in_p95_ms']:+.0f} ms; "
          f"median per-drawing difference: {seq['diff_p50_ms']:+.0f} ms")  # fmt: skip
    for name, r in rows.items():
        if r.get("cpu_s_per_job"):
            print(f"{name}: CPU seconds per job: {r['cpu_s_per_job']}")
    for name, r in rows.items():
        if r["first_error"]:
            print(f"{name}: first error: {r['first_error']}")
    print("sequential jobs, median ms: " + "; ".join(f"{k} {v:.0f}" for k, v in spent.items()))
    hits = [ln for ln in metrics.splitlines() if ln.startswith(("dimflow_cache_lookups_total", "dimflow_jobs_total"))]
    print("\n".join(hits))
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
