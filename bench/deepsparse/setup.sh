#!/usr/bin/env bash
# Makes the DeepSparse 1.8 virtual environment the benches compare against (bench/README.md, "DeepSparse").
#
#   bash bench/deepsparse/setup.sh [VENV]      # default VENV: ~/.cache/sparsert/deepsparse-venv
#   python bench/kernels.py --deepsparse VENV/bin/python ...
#
# Why a venv of its own: DeepSparse is end-of-life. 1.9.0 on PyPI is a stub whose install step exits 1
# ("has reached end-of-life"); 1.8.0 still ships a real manylinux wheel for CPython 3.8-3.11, but pins
# onnx<1.15, which in turn needs numpy<2, neither of which the main environment can go back to.
# torch (the same version as the main environment) goes in too, so that the runner times torch dense in
# DeepSparse's process and reports DeepSparse's speed as a ratio to it. Needs only PyPI; a few minutes.
set -euo pipefail

venv="${1:-${SPARSERT_DS_VENV:-$HOME/.cache/sparsert/deepsparse-venv}}"
python="${PYTHON:-python3}"
torch_version="$("$python" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || echo 2.13.0)"

if ! "$python" -c 'import sys; sys.exit(not ((3, 8) <= sys.version_info[:2] <= (3, 11)))'; then
  echo "setup.sh: $python is Python $("$python" -c 'import platform; print(platform.python_version())') " \
       "(expected 3.8 to 3.11: deepsparse 1.8.0 has wheels for those only; set PYTHON=python3.11)" >&2
  exit 1
fi

"$python" -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
# --only-binary: never fall back to building an sdist (the 1.9.0 stub is one).
"$venv/bin/pip" install -q --only-binary=deepsparse "deepsparse==1.8.0" "onnx<1.15" "numpy<2"
"$venv/bin/pip" install -q "torch==$torch_version"
NM_DISABLE_ANALYTICS=1 "$venv/bin/python" -c '
import deepsparse, numpy, onnx, torch
print(f"deepsparse {deepsparse.__version__}, onnx {onnx.__version__}, numpy {numpy.__version__}, torch {torch.__version__}")'
echo "ok: $venv/bin/python"
