#!/usr/bin/env bash
# End-of-day regime: record today's realised vol in analytics:{sym}:regime:history and recompute the
# trailing percentiles and label, after the close. Usage: scripts/regime-eod.sh [SYMBOL ...] (default QC_SYMBOLS)
# `qc analytics` has no `--task regime-eod` yet, so this runs one pass of every analytics task
# (`--once`), which includes the regime task; switch to `--task regime-eod` when it exists.
set -euo pipefail
exec "$(dirname "$0")/qc-once.sh" regime-eod analytics --once "$@"
