#!/usr/bin/env bash
# Installs the native tools the benchmarks need beside the repository's virtual environment:
# h2load (Debian/Ubuntu package nghttp2-client), the HTTP/2 load generator of
# benchmarks/serving_bench.py. Does nothing when it is already on PATH.
#
#   bash benchmarks/install_bench_tools.sh
#
# Uses apt-get (through sudo when not root); elsewhere install nghttp2's h2load by hand.
set -euo pipefail

if command -v h2load >/dev/null 2>&1; then
  echo "h2load already installed: $(h2load --version | head -n 1)"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "no apt-get here: install h2load (nghttp2's load generator) with your package manager" >&2
  exit 1
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
fi
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends nghttp2-client
echo "installed: $(h2load --version | head -n 1)"
