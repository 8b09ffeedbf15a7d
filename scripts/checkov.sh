#!/usr/bin/env bash
# Static security scan of infra/terraform with checkov (run by `make lint`).
# checkov lives in its own venv (.venv/checkov): its boto3 pin conflicts with the test venv's.
# Skips are in infra/terraform/.checkov.yaml, each with its reason.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LABFLOW_CHECKOV_VENV:-$root/.venv/checkov}"
requirements="$root/requirements-checkov.txt"
stamp="$venv/.installed"
python="${PYTHON:-python3}"

if [[ ! -f "$stamp" || "$requirements" -nt "$stamp" ]]; then
    echo "checkov: installing $(grep -v '^#' "$requirements" | xargs) into $venv" >&2
    [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    touch "$stamp"
fi

cd "$root/infra/terraform"
# --download-external-modules false: no registry access here, and the module has none.
exec "$venv/bin/checkov" \
    --config-file .checkov.yaml \
    --directory . \
    --framework terraform \
    --download-external-modules false \
    --compact \
    --quiet \
    "$@"
