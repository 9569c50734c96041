#!/usr/bin/env bash
# Install the Azure CLI (pip package azure-cli) into its own virtualenv, never into the project's environment:
# azure-cli pins its own azure-core, azure-mgmt-compute and msal. Idempotent: a venv that already has az is reused.
# The venv is ${SCALESET_AZ_VENV:-$HOME/.cache/scaleset/az-venv}. Prints the path of the az executable (the only
# line on stdout), for SCALESET_AZ; pip's output goes to a log that is shown only when the install fails.
set -euo pipefail

venv="${SCALESET_AZ_VENV:-$HOME/.cache/scaleset/az-venv}"
python="${SCALESET_AZ_PYTHON:-python3}"  # the interpreter the venv is made from

if [ ! -x "$venv/bin/az" ] || ! "$venv/bin/python" -c 'import azure.cli.core' >/dev/null 2>&1; then
  mkdir -p "$(dirname "$venv")"
  log="$(mktemp)"
  trap 'rm -f "$log"' EXIT
  export PIP_DISABLE_PIP_VERSION_CHECK=1
  if ! { [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"; } >"$log" 2>&1 \
    || ! "$venv/bin/python" -m pip install --quiet --upgrade pip >>"$log" 2>&1 \
    || ! "$venv/bin/python" -m pip install --quiet azure-cli >>"$log" 2>&1; then
    cat "$log" >&2
    echo "install-az: could not install azure-cli into $venv" >&2
    exit 1
  fi
fi
echo "$venv/bin/az"
