#!/usr/bin/env bash
# buf breaking against the previous commit on main (or $BUF_BREAKING_AGAINST, a git ref).
# Skipped only where that commit has no protos yet (the first contracts commit).
set -euo pipefail
buf=${1:-buf}
against=${BUF_BREAKING_AGAINST:-HEAD~1}
if ! git rev-parse --verify --quiet "$against^{commit}" >/dev/null; then
  echo "buf breaking: no commit '$against' to compare with (shallow or first commit); skipped"
  exit 0
fi
if ! git cat-file -e "$against:protos" 2>/dev/null || ! git cat-file -e "$against:buf.yaml" 2>/dev/null; then
  echo "buf breaking: '$against' has no protos/ yet; skipped"
  exit 0
fi
"$buf" breaking --against ".git#ref=$(git rev-parse "$against")"
echo "buf breaking: no breaking change against $against"
