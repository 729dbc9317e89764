#!/usr/bin/env bash
# Set up rune-lake on a Prefect server (or Cloud workspace) with a process work pool.
# Idempotent: run it again after changing prefect.yaml. Never prompts (safe in CI).
#
#   PREFECT_API_URL=http://127.0.0.1:4200/api deployments/process-pool.sh
#
# Optional environment:
#   RUNE_API_LIMIT            slots of the `rune-api` global concurrency limit (default 8);
#                             every deployment in prefect.yaml passes api_limit: rune-api
#   RUNE_ACCESS_TOKEN_ID, RUNE_ACCESS_TOKEN_SECRET
#                             if both are set, they are saved (not printed) to the Prefect
#                             Secret block `rune-credentials`; pass it as credentials_block
# Then start a worker where the flows should run:
#   RUNE_LAKE_URL=s3://bucket/prefix prefect worker start --pool rune-lake-process
set -euo pipefail
cd "$(dirname "$0")/.."   # prefect.yaml's pull step records this directory

PREFECT=${PREFECT:-$( [ -x .venv/bin/prefect ] && echo .venv/bin/prefect || echo prefect )}
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
POOL=rune-lake-process
LIMIT_NAME=rune-api
LIMIT=${RUNE_API_LIMIT:-8}
BLOCK=rune-credentials
export PREFECT_CLI_PROMPT=false

echo "== work pool $POOL"
if "$PREFECT" work-pool inspect "$POOL" >/dev/null 2>&1; then
  echo "exists"
else
  "$PREFECT" work-pool create "$POOL" --type process
fi

echo "== global concurrency limit $LIMIT_NAME ($LIMIT slots)"
if "$PREFECT" gcl inspect "$LIMIT_NAME" >/dev/null 2>&1; then
  "$PREFECT" gcl update "$LIMIT_NAME" --limit "$LIMIT"
else
  "$PREFECT" gcl create "$LIMIT_NAME" --limit "$LIMIT"
fi

if [ -n "${RUNE_ACCESS_TOKEN_ID:-}" ] && [ -n "${RUNE_ACCESS_TOKEN_SECRET:-}" ]; then
  echo "== Secret block $BLOCK (from RUNE_ACCESS_TOKEN_ID/SECRET)"
  # read from the environment inside Python: never on a command line or in a file
  "$PYTHON" - "$BLOCK" <<'PY'
import os, sys
from prefect.blocks.system import Secret
Secret(value={
    "access_token_id": os.environ["RUNE_ACCESS_TOKEN_ID"],
    "access_token_secret": os.environ["RUNE_ACCESS_TOKEN_SECRET"],
}).save(sys.argv[1], overwrite=True)
print("saved")
PY
fi

echo "== deployments (prefect.yaml)"
"$PREFECT" --no-prompt deploy --all

cat <<MSG

Done. Start a worker (its environment reaches every flow run):
  RUNE_LAKE_URL=s3://bucket/prefix \\
  RUNE_ACCESS_TOKEN_ID=... RUNE_ACCESS_TOKEN_SECRET=...   # or credentials_block: $BLOCK
  $PREFECT worker start --pool $POOL
Every deployment in prefect.yaml caps its API readers with  api_limit: $LIMIT_NAME
MSG
