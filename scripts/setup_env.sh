#!/usr/bin/env bash
# Set up everything vega_ros needs on a fresh Debian machine, idempotently:
#   1. Debian GL libraries for offscreen MuJoCo (Mesa EGL; OSMesa as the fallback), when missing;
#   2. a virtual environment in $VENV (default .venv) with the pinned Python dependencies
#      (requirements/constraints.txt) and this package installed editable.
# A second run compares a stamp of the inputs and returns in well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
EXTRAS=${EXTRAS:-ros,runtime,train,sim,dev}

log() { printf '[setup] %s\n' "$*"; }

have_lib() { ldconfig -p 2>/dev/null | grep -q "$1"; }

ensure_gl() {
  local missing=()
  have_lib 'libEGL_mesa.so' || missing+=(libegl-mesa0 libegl1)
  have_lib 'libGL.so.1' || missing+=(libgl1)
  [ -d /usr/lib/x86_64-linux-gnu/dri ] || [ -d /usr/lib/aarch64-linux-gnu/dri ] || missing+=(libgl1-mesa-dri)
  have_lib 'libOSMesa.so' || missing+=(libosmesa6)
  if [ ${#missing[@]} -eq 0 ]; then return 0; fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    log "WARNING: missing GL packages (${missing[*]}); install them with apt-get for offscreen MuJoCo"
    return 0
  fi
  log "installing Debian GL packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

stamp_of_inputs() {
  cat requirements/constraints.txt setup.py scripts/setup_env.sh | sha256sum | cut -d' ' -f1
  echo "$EXTRAS"
}

ensure_gl
[ -x "$VENV/bin/python" ] || { log "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
stamp_file="$VENV/.vega_ros-installed"
want=$(stamp_of_inputs)
if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$want" ]; then
  log "environment up to date ($VENV)"
  exit 0
fi
start=$(date +%s)
pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
# torch first and pinned: 2.13.0 resolves to the local CPU build; anything looser pulls CUDA wheels.
quiet() { grep -v "is ignored: it is neither a file nor a directory" || true; }
"${pip[@]}" install -q -c requirements/constraints.txt "torch==2.13.0" 2>&1 | quiet
"${pip[@]}" install -q -c requirements/constraints.txt -e ".[$EXTRAS]" 2>&1 | quiet
"$VENV/bin/python" -c "import torch, rclpy, onnxruntime, cv2, mujoco, robosuite" || { log "ERROR: install incomplete"; exit 1; }
echo "$want" > "$stamp_file"
log "installed in $(( $(date +%s) - start )) s into $VENV"
