#!/usr/bin/env bash
# Install qc's systemd units on one box: a `qc` user, /opt/qc with its venv, /etc/qc/qc.env.
# Usage: sudo scripts/install-systemd.sh [verb ...]    (verbs to enable, e.g. stream analytics)
# Redis: production uses a real server (QC_REDIS_URL in /etc/qc/qc.env, AOF on), not the embedded one.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "install-systemd.sh: run as root (sudo)" >&2; exit 2; }
src=$(cd "$(dirname "$0")/.." && pwd)
prefix=/opt/qc

id qc >/dev/null 2>&1 || useradd --system --home "$prefix" --shell /usr/sbin/nologin qc
mkdir -p "$prefix" /etc/qc
if [ "$src" != "$prefix" ]; then
  cp -a "$src/." "$prefix/"
fi
(cd "$prefix" && make .venv/.run)
mkdir -p "$prefix/var"
chown -R qc:qc "$prefix/var"
if [ ! -f /etc/qc/qc.env ]; then
  install -m 0640 -o root -g qc "$src/.env.example" /etc/qc/qc.env
  echo "wrote /etc/qc/qc.env from .env.example: set QC_REDIS_URL and credentials there"
fi
install -m 0644 "$src/systemd/qc@.service" "$src/systemd/qc.target" /etc/systemd/system/
systemctl daemon-reload
systemctl enable qc.target
for verb in "$@"; do
  systemctl enable "qc@${verb}.service"
done
echo "installed. start with: systemctl start qc.target; check with: $prefix/.venv/bin/qc status"
