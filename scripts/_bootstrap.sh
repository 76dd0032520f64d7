# Shared by scripts/encore-up and scripts/encore-test (sourced, not run): system packages and the venv.
# Works on a fresh Debian 12 (or Ubuntu) machine as root, or as a user with sudo.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ENCORE_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
_apt_updated=0

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

apt_install() {
  if ! command -v apt-get >/dev/null; then
    echo "error: please install $* (no apt-get here)" >&2
    exit 1
  fi
  if [ "$_apt_updated" = 0 ]; then
    "${SUDO[@]}" apt-get update -qq
    _apt_updated=1
  fi
  say "installing $* (apt-get)"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_system_packages() {
  command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || apt_install ffmpeg
  command -v "$PYTHON" >/dev/null || apt_install python3
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "error: Encore needs Python 3.11 or newer ($PYTHON is $("$PYTHON" -V 2>&1))" >&2
    exit 1
  fi
  # Debian's python3 ships without venv/ensurepip; they come with python3-venv.
  "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
}

ensure_venv() {
  # A venv copied from another machine can point at a Python that is not here: rebuild it.
  if ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    say "creating $VENV"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  fi
}

install_encore() {
  # $1: the pip target, "." or ".[test]".
  # Versions come from a lock file, used as pip constraints: every package pip installs gets the
  # version the tests passed with, and nothing the target does not need is added. A plain install
  # uses main.lock; one with extras test.lock (all extras). scripts/encore-lock regenerates them.
  local lock="$ROOT/requirements/main.lock"
  [[ "$1" == *"["* ]] && lock="$ROOT/requirements/test.lock"
  say "installing Encore into $VENV (versions from ${lock#"$ROOT"/})"
  if [[ "$1" == *clap* || "$1" == *openl3* || "$1" == *text* || "$1" == *voice* ]]; then
    # The CPU build, pinned and installed first: an unpinned torch would pull GBs of CUDA packages.
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c "$lock" "torch==2.13.0"
  fi
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c "$lock" -e "$1"
  # musicnn ships the default audio encoder's weights (ISC). Its metadata pins numpy<1.17 and
  # TensorFlow 1.x, neither of which Encore uses (the network runs in numpy), hence --no-deps.
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps "musicnn==0.1.0"
}
