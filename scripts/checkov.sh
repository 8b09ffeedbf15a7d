#!/usr/bin/env bash
# Static security scan of infra/terraform with checkov (run by `make lint`).
# checkov lives in its own venv (.venv/checkov): its boto3 pin conflicts with the test venv's.
# Skips: module-wide in infra/terraform/.checkov.yaml, per resource inline (`# checkov:skip=ID: reason`);
# README.md ("Deploy to AWS", checkov skips) lists them all.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LABFLOW_CHECKOV_VENV:-$root/.venv/checkov}"
requirements="$root/requirements-checkov.txt"
stamp="$venv/.installed"
python="${PYTHON:-python3}"

if [[ ! -f "$stamp" || "$requirements" -nt "$stamp" ]]; then
    echo "checkov: installing $(grep -v '^#' "${requirements%.txt}.in" | xargs) into $venv" >&2
    [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r "$requirements"
    touch "$stamp"
fi

cd "$root/infra/terraform"
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
# Offline: --download-external-modules false (the module has none) and --skip-download (no
# guideline/severity lookups at Prisma Cloud; checks and inline skips work without them).
status=0
"$venv/bin/checkov" \
    --skip-download \
    --config-file .checkov.yaml \
    --directory . \
    --framework terraform \
    --download-external-modules false \
    --compact \
    --quiet \
    "$@" | tee "$report" || status=$?
(( status == 0 )) || exit "$status"

# checkov exits 0 when a file does not parse (it just skips the file) or when it found nothing
# to scan: both would hide every check of that file, so they fail the lint here.
if grep -Eq 'Parsing errors: [1-9]' "$report"; then
    echo "checkov: some .tf files did not parse, so they were not checked" >&2
    exit 1
fi
if ! grep -Eq 'Passed checks: [1-9]' "$report"; then
    echo "checkov: no passed checks reported: nothing was scanned?" >&2
    exit 1
fi
