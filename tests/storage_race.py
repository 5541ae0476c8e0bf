"""One race for every storage backend's tests: writers released together onto one key."""

from __future__ import annotations

import threading

from dimflow.storage import Storage, StorageConflict


def race_puts(store: Storage, key: str, payloads: list[bytes]) -> dict[int, str]:
    """Put each payload under `key` from its own thread, all at once; each writer's outcome is
    "won", "conflict", or the repr of anything else it raised."""
    barrier = threading.Barrier(len(payloads))
    outcomes: dict[int, str] = {}

    def writer(i: int) -> None:
        barrier.wait()
        try:
            store.put(key, payloads[i])
            outcomes[i] = "won"
        except StorageConflict:
            outcomes[i] = "conflict"
        except Exception as e:  # pragma: no cover - reported by the caller's assertion
            outcomes[i] = repr(e)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(len(payloads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes
