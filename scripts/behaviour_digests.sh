#!/usr/bin/env bash
# Usage: scripts/behaviour_digests.sh REV OUT
# What a refactor must leave unchanged (#18), for commit REV, written into OUT:
#   config-schema.json, report-schema.json   `privaudit config schema`, `privaudit report --schema`
#   tiny.txt                                 report_digest of the tiny test preset (tests/conftest.py TINY)
#   demo.txt                                 report_digest of the demo preset with secure_aggregation off
# REV runs from a `git archive` export (no .git: provenance.git_commit and git_dirty are null on
# every side, so two commits compare) with this checkout's .venv and 2 torch threads. The demo
# takes about 15 minutes on 2 cores. Compare two OUT directories with `diff -r`.
set -euo pipefail
rev=$1; out=$(realpath -m "$2"); here=$(cd "$(dirname "$0")/.." && pwd)
py=$here/.venv/bin/python; work=$(mktemp -d); src=$work/src
mkdir -p "$src" "$out"
git -C "$here" archive "$rev" | tar -x -C "$src"
export PYTHONPATH=$src PRIVAUDIT_THREADS=2 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
cd "$src"
$py -m privaudit config schema > "$out/config-schema.json"
$py -m privaudit report --schema > "$out/report-schema.json"
# the run directories sit at fixed paths: a path that reaches the report would differ otherwise
rm -rf /tmp/privaudit-digest-tiny /tmp/privaudit-digest-demo
$py - <<'PY' > "$out/tiny.txt"
import json
from privaudit.audit.config import config_from_dict
from privaudit.audit.pipeline import run_audit
try:
    from privaudit.core.hashing import report_digest
    from privaudit.core.progress import PlainReporter
except ImportError:  # before #18
    from privaudit.audit.progress import PlainReporter
    from privaudit.audit.provenance import report_digest
from tests.conftest import TINY
run_audit(config_from_dict(TINY), "/tmp/privaudit-digest-tiny", reporter=PlainReporter(quiet=True))
print(report_digest(json.load(open("/tmp/privaudit-digest-tiny/report.json"))))
PY
$py - <<'PY' > "$work/demo.yaml"
import yaml
d = yaml.safe_load(open("privaudit/audit/presets/demo.yaml"))
d["secure_aggregation"]["enabled"] = False  # CKKS noise is unseeded: its digest differs per run
print(yaml.safe_dump(d))
PY
$py -m privaudit run "$work/demo.yaml" --out /tmp/privaudit-digest-demo > "$out/demo.log" 2>&1
$py -c "from privaudit.audit.provenance import report_file_digest as d
print(d('/tmp/privaudit-digest-demo/report.json'))" > "$out/demo.txt"
cat "$out/tiny.txt" "$out/demo.txt"
