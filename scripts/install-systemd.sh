#!/usr/bin/env bash
# Install qc as a service: a wheel built from this checkout, installed (not editable) into a fresh venv
# of a system interpreter, systemd units, a data directory and an environment file.
#
# Usage: sudo scripts/install-systemd.sh [--root DIR] [--user NAME] [--python PATH]
#                                        [--no-create-user] [--no-systemctl] [VERB ...]
#   VERB ...           qc@VERB instances to enable, e.g. stream chains analytics
#   --root DIR         install under DIR instead of / (staging, tests); implies --no-create-user and
#                      --no-systemctl, and the venv and units name the real paths under DIR
#   --user NAME        service user (default qc); created (system user, no login) when missing and --root is /
#   --python PATH      interpreter for the venv (default /usr/bin/python3): Python >= 3.10 with venv, and
#                      readable by the service user, so never one under /root (pyenv) or a home directory
#   --no-create-user   fail instead of creating a missing user
#   --no-systemctl     do not run systemctl daemon-reload / enable
# pip settings come from pip's own configuration and PIP_* variables (PIP_INDEX_URL, PIP_FIND_LINKS for
# a wheelhouse when offline).
#
# Layout under ROOT:
#   opt/qc/releases/<time>-<version>/   the venv; opt/qc/venv -> the current release (atomic switch, the
#                                       last 3 kept for rollback); root-owned, readable by everyone
#   etc/qc/qc.env                       settings and secrets (from .env.example, only when absent), root:USER 0640
#   var/lib/qc                          QC_DATA_DIR (logs, locks, an embedded Redis), USER:USER 0750
#   etc/systemd/system/qc@.service, qc.target
# Never copied: the checkout's .env, var/, .venv, .git and caches. Exit 2: bad usage; 1: the install failed.
set -euo pipefail
umask 022

me=install-systemd.sh
src=$(cd "$(dirname "$0")/.." && pwd)
root=/
user=qc
python=
create_user=auto
call_systemctl=auto
verbs=()

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "$me: $1" >&2; exit "${2:-1}"; }
bad() { die "$1" 2; }
say() { echo "$me: $*"; }

while [ "$#" -gt 0 ]; do
  case "$1" in
    --root) [ "$#" -ge 2 ] || bad "--root needs a directory (e.g. --root /tmp/stage)"; root=$2; shift 2 ;;
    --root=*) root=${1#*=}; shift ;;
    --user) [ "$#" -ge 2 ] || bad "--user needs a user name (e.g. --user qc)"; user=$2; shift 2 ;;
    --user=*) user=${1#*=}; shift ;;
    --python) [ "$#" -ge 2 ] || bad "--python needs an interpreter path (e.g. --python /usr/bin/python3.11)"
              python=$2; shift 2 ;;
    --python=*) python=${1#*=}; shift ;;
    --no-create-user) create_user=no; shift ;;
    --no-systemctl) call_systemctl=no; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; verbs+=("$@"); break ;;
    -*) bad "unknown option $1 (see --help)" ;;
    *) verbs+=("$1"); shift ;;
  esac
done

# --- check everything before changing anything -------------------------------------------------------
[ -n "$root" ] || bad "--root: empty; give a directory, or leave it out for /"
case "$root" in /*) ;; *) bad "--root: $root is relative; give an absolute path" ;; esac
mkdir -p "$root" 2>/dev/null || die "--root: cannot create $root"
root=$(cd "$root" && pwd -P)
case "$user" in
  ''|*[!a-z0-9_-]*|[0-9-]*) bad "--user: '$user' is not a valid user name (lowercase letters, digits, _ and -)" ;;
esac
case "$root" in *'|'*|*$'\n'*) bad "--root: '$root' has a | or a newline; pick a plain path" ;; esac
for verb in "${verbs[@]}"; do
  case "$verb" in
    ''|*[!a-z]*|output) bad "VERB: '$verb' is not a qc verb (e.g. stream, chains, analytics)" ;;
  esac
  [ -f "$src/qc/commands/$verb.py" ] || bad "VERB: '$verb' is not a qc verb (e.g. stream, chains, analytics)"
done
if [ "$root" = / ]; then
  [ "$create_user" = auto ] && create_user=yes
  [ "$call_systemctl" = auto ] && call_systemctl=yes
  base=
else
  create_user=no
  call_systemctl=no
  base=$root
fi
if ! grep -qs '^name = "qc"' "$src/pyproject.toml"; then
  die "$src is not a qc checkout (no pyproject.toml naming qc)"
fi

if [ -z "$python" ]; then
  if [ -x /usr/bin/python3 ]; then python=/usr/bin/python3; else python=$(command -v python3 || true); fi
  [ -n "$python" ] || die "no python3 found; install Python >= 3.10 (Debian: apt-get install python3-venv) or pass --python"
fi
[ -x "$python" ] || bad "--python: $python is not an executable file"
"$python" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))' 2>/dev/null \
  || bad "--python: $python is not Python >= 3.10 with venv and ensurepip (Debian: apt-get install python3-venv)"

uid=$(id -u)
if [ "$uid" -ne 0 ] && { [ "$root" = / ] || [ "$user" != "$(id -un)" ]; }; then
  bad "run as root (sudo), or stage as yourself: --root DIR --user $(id -un)"
fi
if ! id "$user" >/dev/null 2>&1; then
  [ "$create_user" = yes ] \
    || bad "--user: no user '$user' here; create it (useradd --system $user) or install with --root / to have it created"
  useradd --system --user-group --home-dir /var/lib/qc --no-create-home --shell /usr/sbin/nologin "$user"
  say "created system user $user"
fi
group=$(id -gn "$user")

as_user() {  # run "$@" as the service user (we are that user when not root)
  if [ "$uid" -eq 0 ] && [ "$user" != root ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}
(cd / && as_user "$python" -c 'import venv') 2>/dev/null \
  || bad "--python: user $user cannot run $python (a pyenv or home-directory interpreter?); pass a system one, e.g. --python /usr/bin/python3"

prefix=$base/opt/qc
etc=$base/etc/qc
data=$base/var/lib/qc
units=$base/etc/systemd/system

# --- build the wheel from the tracked sources only ---------------------------------------------------
stage=$(mktemp -d)
release=
cleanup() {  # on any failure: no staging left behind, no half-built release
  rm -rf "$stage"
  if [ -n "$release" ]; then rm -rf "$release"; fi
}
trap cleanup EXIT
mkdir -p "$stage/src" "$stage/dist"
if command -v git >/dev/null 2>&1 && git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # tracked and new-but-not-ignored files, as they are in the work tree (ignored: .env, var/, .venv, caches)
  git -C "$src" ls-files -z --cached --others --exclude-standard \
    | (cd "$src" && while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done) \
    | tar -C "$src" --null -T - -cf - | tar -C "$stage/src" -xf -
else
  tar -C "$src" --exclude=./.git --exclude=./.venv --exclude=./var --exclude=./build --exclude=.env \
      --exclude='*.egg-info' --exclude=__pycache__ --exclude=.pytest_cache --exclude=.mypy_cache \
      --exclude=.ruff_cache --exclude=.hypothesis -cf - . | tar -C "$stage/src" -xf -
fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$stage/src/pyproject.toml" | head -1)
[ -n "$version" ] || die "no version in $src/pyproject.toml"
name=$(date -u +%Y%m%dT%H%M%SZ)-$version  # release names sort by time: pruning keeps the newest
[ ! -e "$prefix/releases/$name" ] || die "$prefix/releases/$name already exists; run again in a second"
release=$prefix/releases/$name

say "creating $release with $python ($("$python" -V 2>&1))"
mkdir -p "$prefix/releases"
"$python" -m venv "$release"
pip=("$release/bin/python" -m pip --disable-pip-version-check --no-input)
say "building the qc $version wheel"
"${pip[@]}" wheel --quiet --no-deps --wheel-dir "$stage/dist" "$stage/src" \
  || die "building the wheel failed (pip output above); is the package index reachable? (PIP_INDEX_URL)"
wheel=$(ls "$stage/dist"/qc-*.whl)
say "installing $(basename "$wheel") and its dependencies"
"${pip[@]}" install --quiet "$wheel" \
  || die "installing the wheel failed (pip output above); is the package index reachable? (PIP_INDEX_URL)"
chmod -R a+rX,go-w "$release"
if [ "$uid" -eq 0 ]; then chown -R root:root "$release"; fi

# --- prove the release runs as the service user before switching to it -------------------------------
got=$(cd / && as_user "$release/bin/qc" --version 2>&1) \
  || die "user $user cannot run $release/bin/qc: $got (is every directory above $prefix searchable by $user?)"
for verb in "${verbs[@]}"; do
  (cd / && as_user "$release/bin/qc" "$verb" --help >/dev/null 2>&1) \
    || bad "VERB: '$verb' is not a qc verb (see $release/bin/qc --help)"
done

# --- switch to it atomically, keep the last 3 for rollback -------------------------------------------
[ -L "$prefix/venv" ] || [ ! -e "$prefix/venv" ] || die "$prefix/venv is not a symlink of this installer; move it away"
ln -sfn "releases/$name" "$prefix/venv.new"
mv -T "$prefix/venv.new" "$prefix/venv"
release=  # switched: from here on it is the installation, not a leftover
# shellcheck disable=SC2012  # release names are ours: time-version, no spaces
ls -1d "$prefix/releases"/*/ | sort | head -n -3 | while IFS= read -r old; do rm -rf "$old"; done
install -m 0644 "$src/README.md" "$prefix/README.md"
install -d -m 0755 "$prefix/scripts"  # the cron batch (crontab.example runs them from here)
for script in qc-once.sh flow-refit.sh regime-eod.sh; do install -m 0755 "$src/scripts/$script" "$prefix/scripts/"; done
install -m 0644 "$src/scripts/crontab.example" "$prefix/scripts/"
for old in .venv .env var qc; do  # the previous installer copied the whole checkout here
  if [ -e "$prefix/$old" ]; then
    say "warning: $prefix/$old is left from an old checkout copy; move its data to $data, then delete it"
  fi
done

# --- settings, data, units ---------------------------------------------------------------------------
install -d -m 0755 "$etc" "$units"
if [ ! -f "$etc/qc.env" ]; then
  sed "s|^QC_DATA_DIR=.*|QC_DATA_DIR=$data|" "$src/.env.example" > "$etc/qc.env"
  chmod 0640 "$etc/qc.env"
  say "wrote $etc/qc.env from .env.example: set QC_REDIS_URL and the credentials there"
elif grep -qs '^QC_DATA_DIR=[^/]' "$etc/qc.env"; then
  say "warning: QC_DATA_DIR in $etc/qc.env is relative (it resolves under $data); set QC_DATA_DIR=$data"
fi
install -d -m 0750 "$data" "$data/logs" "$data/lock"
if [ "$uid" -eq 0 ]; then
  chown -h root:root "$prefix/venv" "$prefix/README.md"
  chown -R root:root "$prefix/scripts"
  chown "$user:$group" "$data/logs" "$data/lock"
  chown root:"$group" "$etc/qc.env"
  chown "$user:$group" "$data"
fi
for unit in qc@.service qc.target; do
  sed -e "s|/opt/qc|@PREFIX@|g; s|/etc/qc|@ETC@|g; s|/var/lib/qc|@DATA@|g" \
      -e "s|@PREFIX@|$prefix|g; s|@ETC@|$etc|g; s|@DATA@|$data|g" \
      -e "s|^User=qc\$|User=$user|; s|^Group=qc\$|Group=$group|" "$src/systemd/$unit" > "$units/$unit"
  chmod 0644 "$units/$unit"
done

say "$got installed: $prefix/venv -> releases/$name, data in $data, runs as $user"
if [ "$call_systemctl" = yes ]; then
  systemctl daemon-reload
  systemctl enable qc.target
  for verb in "${verbs[@]}"; do systemctl enable "qc@$verb.service"; done
  say "start with: systemctl start qc.target; check with: sudo -u $user $prefix/venv/bin/qc status"
else
  for verb in "${verbs[@]}"; do say "not enabling qc@$verb (--root or --no-systemctl)"; done
  say "systemd left alone (--root or --no-systemctl); units are in $units"
fi
