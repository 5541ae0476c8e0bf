#!/usr/bin/env bash
# Supply-chain check: pip-audit over the installed environment (.venv: what the tests and the service run
# with; there is no separate lock file). Fails on any known vulnerability not listed in
# scripts/audit-exceptions.txt (one `ID  # why` per line, passed as --ignore-vuln).
#
#   scripts/audit-deps.sh                      # PyPI's vulnerability data (pip-audit's default service)
#   AUDIT_SERVICE=osv scripts/audit-deps.sh    # OSV (api.osv.dev) instead
#
# Env: VENV (default .venv), AUDIT_SERVICE (pypi | osv), AUDIT_EXCEPTIONS (the exceptions file),
# AUDIT_TIMEOUT (seconds per request, default 15), AUDIT_REPORT (where the JSON report goes).
# Exit: 0 clean; 1 vulnerabilities found (not excepted); 2 the vulnerability service cannot be reached
# or could not say anything about some installed package (an incomplete audit is not a pass);
# 3 a setup problem (no pip-audit, a malformed exceptions file).
# The project itself (an editable install) is skipped: it is not a published package.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.venv}"
SERVICE="${AUDIT_SERVICE:-pypi}"
EXCEPTIONS="${AUDIT_EXCEPTIONS:-scripts/audit-exceptions.txt}"
TIMEOUT="${AUDIT_TIMEOUT:-15}"
PY="$VENV/bin/python"

die() { echo "audit-deps: $2" >&2; exit "$1"; }

[ -x "$PY" ] || die 3 "no Python at $PY (run scripts/setup.sh, or set VENV)"
"$PY" -c 'import pip_audit' 2>/dev/null \
  || die 3 "pip-audit is not installed in $VENV (it is in the dev extra: $VENV/bin/pip install -e '.[dev]')"
case "$SERVICE" in pypi | osv) ;; *) die 3 "AUDIT_SERVICE must be pypi or osv, not '$SERVICE'" ;; esac

# ---- exceptions: `ID  # why`, one a line; a bare ID without its reason is refused
ignore=()
if [ -f "$EXCEPTIONS" ]; then
  n=0
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    id="$(echo "${line%%#*}" | xargs)"
    [ -z "$id" ] && continue
    why="$(echo "${line#*#}" | xargs)"
    [[ "$line" == *"#"* && -n "$why" ]] || die 3 "$EXCEPTIONS:$n: '$id' needs a reason ('$id  # why')"
    [[ "$id" =~ ^[A-Za-z0-9][A-Za-z0-9._:-]*$ ]] || die 3 "$EXCEPTIONS:$n: '$id' is not a vulnerability id"
    ignore+=(--ignore-vuln "$id")
  done < "$EXCEPTIONS"
fi

# ---- can the service answer at all? pip-audit alone would report every package as "not found" and pass
"$PY" - "$SERVICE" "$TIMEOUT" <<'PY' || exit 2
import sys
from importlib.metadata import version

import requests

service, timeout = sys.argv[1], float(sys.argv[2])
pip_version = version("pip")
try:
    if service == "pypi":
        # the URL pip-audit's PyPI service asks, for a package every environment has
        url = f"https://pypi.org/pypi/pip/{pip_version}/json"
        r = requests.get(url, timeout=timeout)
        ok = r.status_code == 200 and "vulnerabilities" in r.json()
    else:
        url = "https://api.osv.dev/v1/query"
        r = requests.post(url, json={"package": {"name": "pip", "ecosystem": "PyPI"}, "version": pip_version},
                          timeout=timeout)
        ok = r.status_code == 200
except (requests.RequestException, ValueError) as exc:
    print(f"audit-deps: the {service} vulnerability service is unreachable ({url}): {exc}", file=sys.stderr)
    sys.exit(2)
if not ok:
    print(f"audit-deps: the {service} vulnerability service did not answer usefully: {url} gave HTTP "
          f"{r.status_code}{' (a mirror without per-release data?)' if service == 'pypi' else ''}; "
          "nothing was audited", file=sys.stderr)
    sys.exit(2)
PY

report="${AUDIT_REPORT:-$(mktemp "${TMPDIR:-/tmp}/audit-deps.XXXXXX.json")}"
echo "audit-deps: pip-audit ($SERVICE) over $VENV, $((${#ignore[@]} / 2)) exceptions from $EXCEPTIONS; report: $report"
set +e
PIPAPI_PYTHON_LOCATION="$PY" "$PY" -m pip_audit \
  --vulnerability-service "$SERVICE" --skip-editable --progress-spinner off --timeout "$TIMEOUT" \
  --aliases on --desc off --format json --output "$report" ${ignore[@]+"${ignore[@]}"}
rc=$?
set -e
[ -s "$report" ] || die 2 "pip-audit exited with $rc and wrote no report"

# ---- summary: vulnerabilities (with fix versions), and packages the service could not say anything about
"$PY" - "$report" "$rc" <<'PY'
import json
import sys

report, rc = sys.argv[1], int(sys.argv[2])
deps = json.load(open(report))["dependencies"]
vulns = [(d, v) for d in deps for v in d.get("vulns", [])]
skipped = [d for d in deps if "skip_reason" in d and "editable" not in d["skip_reason"]]
audited = [d for d in deps if "skip_reason" not in d]
print(f"audit-deps: {len(audited)} packages audited, {len(vulns)} known vulnerabilities, {len(skipped)} not audited")
for d, v in vulns:
    fix = ", ".join(v.get("fix_versions") or []) or "no fixed release"
    aliases = f" ({', '.join(v['aliases'])})" if v.get("aliases") else ""
    print(f"  VULN {d['name']} {d['version']}: {v['id']}{aliases}; fixed in: {fix}")
for d in skipped:
    print(f"  NOT AUDITED {d['name']}: {d['skip_reason']}")
if vulns:
    print("audit-deps: upgrade, or list the id in the exceptions file with the reason it does not apply")
    sys.exit(1)
if skipped:
    print("audit-deps: the audit is incomplete (the service does not know these releases); not a pass")
    sys.exit(2)
if rc != 0:
    print(f"audit-deps: pip-audit exited with {rc}")
    sys.exit(2)
PY
