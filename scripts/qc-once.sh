#!/usr/bin/env bash
# Run one `qc` command once, for cron: load the env file, never overlap itself, log start/end/exit code.
# Usage: scripts/qc-once.sh NAME VERB [ARGS...]     e.g. scripts/qc-once.sh regime-eod analytics --once SPY
# Env: BATCH_QC_HOME (default: the directory above this script: a checkout, or /opt/qc when installed),
#      BATCH_QC_BIN (default: $BATCH_QC_HOME/venv/bin/qc when installed, else $BATCH_QC_HOME/.venv/bin/qc),
#      BATCH_ENV_FILE (default: /etc/qc/qc.env when it exists; sets QC_REDIS_URL and the rest),
#      BATCH_LOCK_DIR (default: $QC_DATA_DIR/lock, QC_DATA_DIR from the env file, else $BATCH_QC_HOME/var).
# Exit: qc's own code (0 ok, 1 runtime failure, 2 bad config); 75 when the previous run still holds the lock.
set -euo pipefail
[ "$#" -ge 2 ] || { echo "usage: $0 NAME VERB [ARGS...]" >&2; exit 2; }
name=$1; shift
home=${BATCH_QC_HOME:-$(cd "$(dirname "$0")/.." && pwd)}
env_file=${BATCH_ENV_FILE:-/etc/qc/qc.env}
if [ -f "$env_file" ]; then
  set -a; . "$env_file"; set +a
fi
if [ -x "$home/venv/bin/qc" ]; then default_bin=$home/venv/bin/qc; else default_bin=$home/.venv/bin/qc; fi
bin=${BATCH_QC_BIN:-$default_bin}
[ -x "$bin" ] || { echo "$name: $bin is not executable (set BATCH_QC_BIN or run \`make run\`)" >&2; exit 2; }
lock_dir=${BATCH_LOCK_DIR:-${QC_DATA_DIR:-$home/var}/lock}
mkdir -p "$lock_dir"
exec 9>"$lock_dir/$name.lock"
if ! flock -n 9; then
  echo "$(date -u +%FT%TZ) $name: previous run still going; skipped" >&2
  exit 75
fi
cd "$home"
echo "$(date -u +%FT%TZ) $name: qc $*" >&2
rc=0
"$bin" "$@" || rc=$?
echo "$(date -u +%FT%TZ) $name: exit $rc" >&2
exit "$rc"
