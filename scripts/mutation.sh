#!/usr/bin/env bash
# Mutation testing of the rules the tests must guard: the grammar, the scorer and the merge
# (pyproject.toml's [tool.mutmut]). Not part of CI: about half an hour on 2 cores.
# Prints mutmut's per-mutant results, then the share of mutants the unit tests killed.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf mutants
.venv/bin/mutmut run --max-children "${MUTMUT_CHILDREN:-2}" >/dev/null || true
.venv/bin/mutmut results --all true > mutants/results.txt || true
.venv/bin/python - <<'PY'
import collections, re
from pathlib import Path
rows = [l.strip() for l in Path("mutants/results.txt").read_text().splitlines() if ": " in l]
by_file = collections.defaultdict(collections.Counter)
for row in rows:
    name, status = row.rsplit(": ", 1)
    module = re.sub(r"\.x[ǁ_].*", "", name.split("__mutmut_")[0])
    by_file[module.rsplit(".", 1)[0] if ".x_" in name or "ǁ" in name else module][status] += 1
total = collections.Counter()
for module, counts in sorted(by_file.items()):
    n = sum(counts.values())
    total += counts
    print(f"{module}: {counts['killed']}/{n} killed ({counts['killed'] / n:.1%}), {dict(counts)}")
n = sum(total.values())
print(f"all: {total['killed']}/{n} killed ({total['killed'] / max(n, 1):.1%}), {dict(total)}")
PY
