#!/usr/bin/env bash
# Fetch the real photos (people) that the simulator composites into its scene clips.
# They come from the ultralytics wheel on PyPI; nothing is committed and nothing is fetched at run time.
set -euo pipefail
dest="${CAMPUSWATCH_ASSETS_DIR:-$(cd "$(dirname "$0")/.." && pwd)/.cache/assets}"
py="${PYTHON:-python3}"
if [ -s "$dest/bus.jpg" ] && [ -s "$dest/zidane.jpg" ]; then exit 0; fi
mkdir -p "$dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" -m pip download -q --no-deps --only-binary :all: -d "$tmp" "ultralytics==8.3.*"
"$py" - "$tmp" "$dest" <<'PY'
import pathlib, sys, zipfile
tmp, dest = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = next(tmp.glob("ultralytics-*.whl"))
with zipfile.ZipFile(wheel) as zf:
    for name in ("bus.jpg", "zidane.jpg"):
        (dest / name).write_bytes(zf.read(f"ultralytics/assets/{name}"))
PY
echo "assets in $dest"
