#!/usr/bin/env bash
# Flow-clustering refit: refit the KMeans flow model (analytics:flow_model:{sym}) on the recent tape.
# Usage: scripts/flow-refit.sh [SYMBOL ...] (default QC_SYMBOLS)
# `qc analytics` has no `--task flow-refit` yet, so this runs one pass of every analytics task
# (`--once`), which includes the flow refit; switch to `--task flow-refit` when it exists.
set -euo pipefail
exec "$(dirname "$0")/qc-once.sh" flow-refit analytics --once "$@"
