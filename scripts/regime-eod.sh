#!/usr/bin/env bash
# End-of-day regime: record today's realised vol in analytics:{sym}:regime:history and recompute the
# trailing percentiles and label, after the close. Usage: scripts/regime-eod.sh [SYMBOL ...] (default QC_SYMBOLS)
# One pass of the positioning task only: the positioning task records the session's realised vol in the regime history (warm start) and
# recomputes the regime percentiles and label.
set -euo pipefail
exec "$(dirname "$0")/qc-once.sh" regime-eod analytics --once --task positioning "$@"
