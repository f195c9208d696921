#!/usr/bin/env bash
# Builds the peers of benchmarks/serving_bench.py, each in its own virtual environment outside the
# repository (their pins fight the repository's lock): KServe's Python model server and MLServer,
# each with TensorFlow to load the benchmark's SavedModel in a small custom model (kserve_model.py,
# mlserver_runtime.py beside this script).
#
#   bash benchmarks/peers/make_peer_venvs.sh [FOLDER]     # default FOLDER: /tmp/peers
#   .venv/bin/python benchmarks/serving_bench.py --peers FOLDER
#
# About 3 GB and a few minutes per environment. Set PYTHON to pick the interpreter (3.11).
set -euo pipefail

PEERS=${1:-/tmp/peers}
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
KSERVE_VERSION=${KSERVE_VERSION:-0.21.*}
MLSERVER_VERSION=${MLSERVER_VERSION:-1.7.1}
TENSORFLOW_VERSION=${TENSORFLOW_VERSION:-2.21.*}

build() {  # build NAME PACKAGE...
  local venv="$PEERS/$1-venv"
  shift
  echo "== $venv: $*"
  test -x "$venv/bin/python" || "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@"
  "$venv/bin/python" -m pip check || echo "warning: pip check found conflicts in $venv"
}

mkdir -p "$PEERS"
build kserve "kserve==$KSERVE_VERSION" "tensorflow-cpu==$TENSORFLOW_VERSION"
# uvloop 0.22 raises in asyncio.get_event_loop() without a running loop, which MLServer 1.7.1's
# inference worker processes call at start: they die and no model ever loads.
build mlserver "mlserver==$MLSERVER_VERSION" "tensorflow-cpu==$TENSORFLOW_VERSION" "uvloop<0.22"

for peer in kserve mlserver; do
  TF_CPP_MIN_LOG_LEVEL=3 "$PEERS/$peer-venv/bin/python" -c \
    'import sys; from importlib.metadata import version as v; print(sys.argv[1], v(sys.argv[1]), "tensorflow-cpu", v("tensorflow-cpu"))' "$peer" 2>/dev/null
done
