"""Print what a `process-drawing` run costs beyond its work: a drawing whose stages are all cached,
run again and again in one long-lived process, with Prefect's default flow heartbeat and with it
switched off in code (the environment cannot: PREFECT_FLOWS_HEARTBEAT_FREQUENCY must be >= 30).

.venv/bin/python bench/flow_overhead.py [--n 5] [--drawing samples/drawings/2027-00002.png]

Measured here (2 cores, ephemeral API): 1.11 s median with the heartbeat; without it the first run
took 0.38 s and the next ones 2.4-2.8 s, so entering the settings context costs something else.
The sync flow engine joins its heartbeat thread on exit, and that thread sleeps in 1 s steps.
"""

from __future__ import annotations

import argparse
import statistics
import time

from dimflow.settings import configure_environment


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5, help="timed runs per setting")
    ap.add_argument("--drawing", default="samples/drawings/2027-00002.png")
    args = ap.parse_args()
    configure_environment(log_level="WARNING")
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.process import process_drawing

    process_drawing(args.drawing)  # starts the API, loads the models, fills the stage cache

    def runs() -> list[float]:
        took = []
        for _ in range(args.n):
            t = time.perf_counter()
            process_drawing(args.drawing)
            took.append(time.perf_counter() - t)
        return took

    default = runs()
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        off = runs()
    for name, took in (("default heartbeat", default), ("heartbeat off", off)):
        print(f"{name}: median {statistics.median(took):.2f} s, runs {[round(t, 2) for t in took]}")


if __name__ == "__main__":
    main()
