#!/usr/bin/env bash
# Install sparsescope and everything it needs on a fresh Debian machine.
#   bash scripts/setup.sh          # the package, torch (CPU build), Fashion-MNIST
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
[ "$want_test" = 1 ] && apt_pkgs+=(chromium chromium-driver)
missing=()
for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
# A Debian system Python refuses pip installs (PEP 668) unless told; a pyenv
# or venv Python ignores this.
export PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
# torch first, pinned: here pip takes the local CPU wheel of 2.13.0; with no
# torch installed, a plain requirement would pull a multi-GB CUDA build.
links=(); [ -d /opt/wheels ] && links=(--find-links /opt/wheels)  # where this machine keeps that wheel
$PY -m pip install -q "${links[@]}" "torch==2.13.0"
if [ "$want_test" = 1 ]; then
  $PY -m pip install -q -e ".[test]"
else
  $PY -m pip install -q -e .
fi
