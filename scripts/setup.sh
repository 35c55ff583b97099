#!/usr/bin/env bash
# Install sparsescope and everything it needs on a fresh Debian machine.
#   bash scripts/setup.sh          # the package, the CPU build of torch, Fashion-MNIST
#   bash scripts/setup.sh --test   # the same, plus pytest, hypothesis, playwright and chromium
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

apt_pkgs=(dataset-fashion-mnist)
[ "$want_test" = 1 ] && apt_pkgs+=(chromium chromium-driver)
missing=()
for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
# The CPU build first: with no torch present, a plain requirement pulls CUDA.
$PY -m pip install -q --disable-pip-version-check "torch==2.13.0"
if [ "$want_test" = 1 ]; then
  $PY -m pip install -q --disable-pip-version-check -e ".[test]"
else
  $PY -m pip install -q --disable-pip-version-check -e .
fi
