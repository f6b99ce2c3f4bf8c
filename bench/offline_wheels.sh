#!/usr/bin/env bash
# Wheels of zoo's dependencies that a prebuilt GPU image usually lacks, for running bench/gpu_check.sh on a machine
# that has PyTorch, Lightning, timm and torchvision but no internet. Run it where pip reaches a package index; it
# writes the wheels to .whl/ in the repository root (ignored by git), and bench/gpu_check.sh installs them from there
# (into /tmp/zoo-site, on PYTHONPATH; nothing of the machine's Python changes).
#
#     bash bench/offline_wheels.sh                          # for this Python's version
#     PYTHON_VERSION=3.12 bash bench/offline_wheels.sh      # for the GPU machine's Python
#     bash bench/offline_wheels.sh kornia==0.9.0 av==14.0   # other packages (default: kornia, kornia_rs, torchdata)
#
# Only binary wheels for manylinux x86-64 are fetched, without their dependencies (the GPU image has those).
set -euo pipefail
cd "$(dirname "$0")/.."
version="${PYTHON_VERSION:-$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')}"
packages=("$@")
if [ ${#packages[@]} -eq 0 ]; then
    # the versions installed here, which the tests passed with
    mapfile -t packages < <(python3 - <<'PY'
from importlib.metadata import PackageNotFoundError, version
for name in ("kornia", "kornia_rs", "torchdata"):
    try:
        print(f"{name}=={version(name)}")
    except PackageNotFoundError:
        print(name)
PY
)
fi
mkdir -p .whl
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$tag")
done
python3 -m pip download --no-deps --only-binary=:all: --python-version "$version" --implementation cp \
    "${platforms[@]}" -d .whl "${packages[@]}"
echo "wheels for Python $version in .whl/:"
ls -1 .whl
