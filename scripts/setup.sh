#!/usr/bin/env bash
# Set up neulens_ros from a fresh clone and run the main job (the pipeline on sample data).
#
#   scripts/setup.sh            # install everything (idempotent), then run the demo
#   scripts/setup.sh --no-run   # install only (what the test command calls)
#
# Installs: Debian packages it needs (as root or with sudo), a venv in .venv with pinned wheels
# (torch CPU, ROS 2 Kilted rclpy wheels, open3d, ...), the message packages neulens_msgs and,
# where no vision_msgs is installed, the project's wire-compatible vision_msgs, and finally
# the neulens_ros package itself. A second run only re-does what changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${NEULENS_VENV:-$ROOT/.venv}"
RUN_DEMO=1
for arg in "$@"; do
  case "$arg" in
    --no-run) RUN_DEMO=0 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument '$arg' (use --no-run or --help)" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }
fail() { printf '\033[1;31m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }

# --- 1. Debian packages ------------------------------------------------------------------
# libusb: open3d's import needs it; cmake/g++: message build; iproute2/iputils-ping:
# the emulated link and its tests.
APT_PACKAGES=(libusb-1.0-0 cmake g++ iproute2 iputils-ping)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  SUDO=''
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || fail "need root or sudo to install: ${missing[*]}"
    SUDO='sudo'
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- 2. venv and pinned wheels -----------------------------------------------------------
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  say "creating venv $VENV"
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
"$VPY" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' 2>/dev/null \
  || fail "the ROS 2 Kilted wheels need CPython 3.11; set PYTHON=python3.11 and remove $VENV"
# pip -q still warns about every unreachable index location: keep real errors only.
pip_quiet() {
  "$VPY" -m pip -q "$@" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
}
STAMP_DIR="$VENV/.neulens"
mkdir -p "$STAMP_DIR"
req_hash="$(cat "$ROOT/requirements.txt" "$ROOT/constraints.txt" | sha256sum | cut -c1-16)"
if [ "$(cat "$STAMP_DIR/requirements" 2>/dev/null)" != "$req_hash" ]; then
  say 'installing pinned wheels (first run: a few minutes)'
  pip_quiet install --upgrade pip
  # torch first and alone: the exact pin selects the CPU wheel.
  pip_quiet install torch==2.13.0
  pip_quiet install -r "$ROOT/requirements.txt" -c "$ROOT/constraints.txt"
  echo "$req_hash" > "$STAMP_DIR/requirements"
fi

# --- 3. ROS 2 wheel fix: CMake exports hard-code the wheel builder's Python paths -----------
py_inc="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
np_inc="$("$VPY" -c 'import numpy; print(numpy.get_include())')"
bad_files="$(grep -rl '/opt/python/cp311-cp311' "$VENV/share" --include='*.cmake' 2>/dev/null || true)"
if [ -n "$bad_files" ]; then
  say 'fixing Python include paths in the ROS wheels CMake exports'
  echo "$bad_files" | xargs sed -i \
    -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$np_inc#g" \
    -e "s#/opt/python/cp311-cp311/include/python3.11#$py_inc#g"
fi

# --- 4. message packages ------------------------------------------------------------------
export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
build_interface() {  # $1 = package folder under interfaces/
  local name="$1" src="$ROOT/interfaces/$1" bld="$ROOT/build/$1" hash
  local msgs="$src/msg"
  [ "$name" = neulens_msgs ] && msgs="$ROOT/msg"  # neulens_msgs builds the top-level msg/
  hash="$(cat "$src/CMakeLists.txt" "$src/package.xml" "$msgs"/*.msg | sha256sum | cut -c1-16)"
  if [ "$(cat "$STAMP_DIR/$name" 2>/dev/null)" = "$hash" ] \
     && "$VPY" -c "import $name.msg" 2>/dev/null; then
    return 0
  fi
  say "building message package $name"
  rm -rf "$bld"
  cmake -S "$src" -B "$bld" -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$VPY" \
    -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release > "$bld.log" 2>&1 \
    || { tail -30 "$bld.log"; fail "configuring $name failed (full log: $bld.log)"; }
  cmake --build "$bld" -j "$(nproc)" >> "$bld.log" 2>&1 \
    || { tail -30 "$bld.log"; fail "building $name failed (full log: $bld.log)"; }
  cmake --install "$bld" >> "$bld.log" 2>&1 || fail "installing $name failed (log: $bld.log)"
  echo "$hash" > "$STAMP_DIR/$name"
}
mkdir -p "$ROOT/build"
# Never shadow a real vision_msgs: build ours only where none exists, or where the one found is
# our own earlier build (its package.xml carries the 'neulens_ros-compat' mark).
vm_xml="$("$VPY" - <<'EOF'
try:
    from ament_index_python.packages import get_package_share_directory
    print(get_package_share_directory('vision_msgs') + '/package.xml')
except Exception:
    print('')
EOF
)"
if [ -z "$vm_xml" ] || grep -q 'neulens_ros-compat' "$vm_xml" 2>/dev/null; then
  build_interface vision_msgs
else
  say "using the installed vision_msgs ($(dirname "$vm_xml"))"
fi
build_interface neulens_msgs

# --- 5. the neulens_ros package (console scripts, ament index, launch/config files) ---------
pkg_hash="$(cd "$ROOT" && git ls-files -s -- setup.py setup.cfg package.xml neulens_ros launch \
  config models resource 2>/dev/null | sha256sum | cut -c1-16)"
if [ "$(cat "$STAMP_DIR/package" 2>/dev/null)" != "$pkg_hash" ] || [ -n "$(cd "$ROOT" \
     && git status --porcelain -- neulens_ros launch config models 2>/dev/null)" ]; then
  say 'installing the neulens_ros package'
  pip_quiet install --no-deps --no-build-isolation "$ROOT" \
    || fail 'pip install of neulens_ros failed'
  echo "$pkg_hash" > "$STAMP_DIR/package"
fi
"$VPY" -c 'from neulens_msgs.msg import TileDecision, TileBatch, StageTiming
from vision_msgs.msg import Detection2DArray, Detection3DArray
import rclpy, neulens_ros' || fail 'the installed packages do not import (see above)'
say "ready: venv $VENV"

# --- 6. the main job ----------------------------------------------------------------------
if [ "$RUN_DEMO" = 1 ]; then
  exec "$VENV/bin/neulens-demo" --out "$ROOT/out/demo"
fi
