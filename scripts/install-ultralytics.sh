#!/usr/bin/env bash
# The optional ultralytics detector backend, installed into .venv for the tests that exercise it.
# torch and torchvision are pinned to the releases these machines hold on disk (a CUDA build that runs on the
# CPU too; pip takes them from the disk, nothing large is downloaded). ultralytics goes in without its
# dependencies because it asks for opencv-python, which would overwrite our opencv-python-headless (both install
# cv2, and OpenCV 5 has no darknet reader); the rest of its dependencies are listed here.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
if "$py" -c "import ultralytics, torch, lap" 2>/dev/null; then exit 0; fi
echo "install-ultralytics: torch 2.14.1 (from disk), ultralytics and its dependencies, without opencv-python"
"$py" -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
"$py" -m pip install -q "matplotlib>=3.3" "pillow>=7.1.2" "polars>=0.20" "psutil>=5.8" "requests>=2.23" \
  "ultralytics-thop>=2.0" "nvidia-ml-py" "lap>=0.5" "httpx>=0.27"
"$py" -m pip install -q --no-deps "ultralytics>=8.3,<9" "ultralytics-platform"
"$py" -c "import cv2; assert hasattr(cv2.dnn, 'readNetFromDarknet'), 'cv2 was replaced by OpenCV 5'"
