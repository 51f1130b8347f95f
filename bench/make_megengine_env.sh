#!/usr/bin/env bash
# Create bench/.megengine-venv: a Python 3.10 virtual environment with MegEngine 1.13.0,
# for bench/megengine_original.py (the original experiment's code, run as written).
#
# MegEngine publishes wheels only up to CPython 3.10 (and NumPy 1.x), hence the
# separate environment. Usage, from the repository root:
#     bash bench/make_megengine_env.sh            # uses python3.10 (or $PYTHON310)
# The benchmark suite skips the MegEngine row with a message when this env is missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.megengine-venv"

# Find a working Python 3.10: $PYTHON310, python3.10 on PATH, or a pyenv install.
candidates=("${PYTHON310:-}" python3.10)
if command -v pyenv >/dev/null 2>&1; then
    for p in "$(pyenv root)"/versions/3.10*/bin/python3.10; do candidates+=("$p"); done
fi
py=""
for c in "${candidates[@]}"; do
    [ -n "$c" ] || continue
    if "$c" -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1; then py="$c"; break; fi
done
if [ -z "$py" ]; then
    echo "make_megengine_env: no working python3.10 found (set PYTHON310=/path/to/python3.10)" >&2
    exit 1
fi

echo "make_megengine_env: creating $venv with $py" >&2
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet megengine==1.13.0 "numpy<2"
"$venv/bin/python" -c 'import megengine; print("megengine", megengine.__version__)'
