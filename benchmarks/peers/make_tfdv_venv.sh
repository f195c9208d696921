#!/usr/bin/env bash
# Builds TFDV, the peer of benchmarks/validation_bench.py, in its own virtual environment outside
# the repository: TFDV 1.16.1 is the newest that installs on Python 3.11 and pins an older stack
# (tensorflow 2.16, pyarrow 10, pandas < 2, apache-beam 2.61, protobuf 4.25) that fights the
# repository's lock.
#
#   bash benchmarks/peers/make_tfdv_venv.sh [VENV]        # default VENV: /tmp/peers/tfdv-venv
#   .venv/bin/python benchmarks/validation_bench.py --tfdv-python /tmp/peers/tfdv-venv/bin/python
#   /tmp/peers/tfdv-venv/bin/python benchmarks/peers/tfdv_compat_check.py
#
# About 2.8 GB and two minutes. Set PYTHON to pick the interpreter (3.11).
set -euo pipefail

VENV=${1:-/tmp/peers/tfdv-venv}
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
TFDV_VERSION=${TFDV_VERSION:-1.16.1}

echo "== $VENV: tensorflow-data-validation==$TFDV_VERSION"
mkdir -p "$(dirname "$VENV")"
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
# TFDV alone sends pip's resolver backtracking through apache-beam[gcp]'s Google Cloud clients
# until it tries to build an old pyarrow from source (and fails); pinning the stack TFDV 1.16 was
# released with resolves at once. [visualization] brings IPython for tfdv.get_statistics_html.
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --only-binary pyarrow \
  "tensorflow-data-validation[visualization]==$TFDV_VERSION" \
  "tfx-bsl==$TFDV_VERSION" \
  "apache-beam[gcp]==2.61.0" \
  "pyarrow==10.0.1" \
  "tensorflow==2.16.2" \
  "tensorflow-serving-api==2.16.1" \
  "pandas<2" \
  "protobuf>=4.25,<5"
"$VENV/bin/python" -m pip check || echo "warning: pip check found conflicts in $VENV"

"$VENV/bin/python" - <<'EOF'
import apache_beam, pyarrow, tensorflow as tf, tensorflow_data_validation as tfdv
print("tfdv", tfdv.__version__, "tensorflow", tf.__version__, "pyarrow", pyarrow.__version__,
      "apache-beam", apache_beam.__version__)
EOF
