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
    m = re.match(r"\s*([\w.]+?)\.x[_ǁ].*__mutmut_\d+: (\w[\w ]*)$", line)
    if m:
        counts[m.group(1)][m.group(2)] += 1
total = collections.Counter()
for module, c in sorted(counts.items()):
    total += c
    n = sum(c.values())
    print(f"{module}: {c['killed']}/{n} killed ({c['killed'] / n:.1%}) {dict(c)}")
n = sum(total.values())
print(f"all: {total['killed']}/{n} killed ({total['killed'] / max(n, 1):.1%}) {dict(total)}")
PY
