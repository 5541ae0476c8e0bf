#!/usr/bin/env bash
# Mutation testing of the rules the tests must guard: the grammar, the scorer, the merge and the
# stages (pyproject.toml's [tool.mutmut]) against the unit tests. Not part of CI: about 6 minutes
# on 2 cores. The stages that run models (detect, read, segment, load) have no unit tests (the
# integration and model tests cover them) and show as "no tests".
# Prints mutmut's per-mutant results, then the share of mutants the unit tests killed.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf mutants
.venv/bin/mutmut run --max-children "${MUTMUT_CHILDREN:-2}" >/dev/null || true
.venv/bin/mutmut results --all true > mutants/results.txt || true
.venv/bin/python - <<'PY'
import collections
import re
from pathlib import Path

counts = collections.defaultdict(collections.Counter)
for line in Path("mutants/results.txt").read_text().splitlines():
    m = re.match(r"\s*([\w.]+?)\.x[_ǁ](.*?)__mutmut_\d+: (\w[\w ]*)$", line)
    if m:
        module, function, status = m.groups()
        counts[module][status] += 1
        counts[f"{module}.{function}"][status] += 1


def line(name: str, c: collections.Counter) -> str:
    tested = sum(c.values()) - c["no tests"]
    caught = c["killed"] + c["timeout"]
    return f"{name}: {caught}/{tested} caught ({caught / max(tested, 1):.1%}) {dict(c)}"


modules = sorted(k for k in counts if k.count(".") == 1)
for module in modules:
    print(line(module, counts[module]))
for name in sorted(k for k in counts if k.count(".") == 2 and counts[k]["no tests"] == 0 and k.startswith("dimflow.stages")):
    print("  " + line(name, counts[name]))
print(line("all", sum((counts[m] for m in modules), collections.Counter())))
PY
