#!/usr/bin/env bash
# One command for a lent GPU (docs/performance.md, "On a GPU"):
#
#   benchmarks/gpu_check.sh [--out DIR] [--budget S] [--skip STEPS]   # on the GPU machine
#   benchmarks/gpu_check.sh --dry-run                                # anywhere: tiny, on the CPU
#
# runs polarlinalg validate, the GPU benchmark rows and 50 LM steps, and writes
# DIR/gpu-check.json and DIR/gpu-check.md (python -m polarlinalg.bench.gpu_check
# does the work; --help lists its options).
#
# The project's GPU image lacks array-api-compat and array-api-strict, which
# `import polarlinalg` needs. When they are not importable they are installed,
# with no index and no dependencies, from the wheels in $WHEELS (default .whl/
# in the checkout) into a private folder put on PYTHONPATH. Make the wheels on a
# machine with pip access:
#   python -m pip download --no-deps --only-binary=:all: -d .whl \
#       array-api-compat==1.16.0 array-api-strict==2.6.1
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
WHEELS="${WHEELS:-.whl}"
if ! "$PYTHON" -c "import array_api_compat, array_api_strict" 2>/dev/null; then
  if ! compgen -G "$WHEELS/*.whl" >/dev/null; then
    echo "gpu_check.sh: array-api-compat or array-api-strict is missing and $WHEELS/ holds" \
      "no wheels; see docs/performance.md, 'On a GPU'" >&2
    exit 2
  fi
  SITE="${TMPDIR:-/tmp}/polarlinalg-site"
  echo "gpu_check.sh: installing $(cd "$WHEELS" && ls ./*.whl | tr '\n' ' ')into $SITE" >&2
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" "$WHEELS"/*.whl
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" -m polarlinalg.bench.gpu_check "$@"
