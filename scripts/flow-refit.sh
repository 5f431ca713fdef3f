#!/usr/bin/env bash
# Flow-clustering refit: refit the KMeans flow model (analytics:flow_model:{sym}) on the recent tape.
# Usage: scripts/flow-refit.sh [SYMBOL ...] (default QC_SYMBOLS)
# One pass of the flow task only: the flow task refits the clusters on the latest prints, starting from the stored model so labels stay.
set -euo pipefail
exec "$(dirname "$0")/qc-once.sh" flow-refit analytics --once --task flow "$@"
