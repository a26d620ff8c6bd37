#!/usr/bin/env bash
# Install llama-cpp-python (the `llamacpp` extra's engine) into PYTHON's environment from a wheel
# cached under the user's cache dir, building the wheel once when the cache has none.
#
#   scripts/llamacpp_wheel.sh [PYTHON]        PYTHON defaults to `python` (the active venv's)
#
# llama-cpp-python ships only a source distribution on PyPI: every install compiles llama.cpp
# (325 s on a busy 2-core machine). The wheel is built for a portable CPU (no -march=native: AVX2/FMA/F16C,
# any x86-64 CPU since 2013), without the multimodal library finesift never loads (LLAVA_BUILD=OFF,
# most of the compile time), and kept in
#   ${XDG_CACHE_HOME:-~/.cache}/finesift/wheels/llama-cpp-python-<version>-<python>-<platform>-<args hash>/
# so later runs on the same machine install it in seconds. Environment:
#   LLAMACPP_VERSION     version to install (default: the pin in constraints/pinned.txt, else 0.3.16)
#   LLAMACPP_CMAKE_ARGS  CMake flags for the build (default: the portable CPU set below)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${1:-python}

pinned=$(sed -n 's/^llama-cpp-python==\([^ ;]*\).*/\1/p' constraints/pinned.txt 2>/dev/null | head -n 1)
VERSION=${LLAMACPP_VERSION:-${pinned:-0.3.16}}
CMAKE_FLAGS=${LLAMACPP_CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF}
tag=$("$PYTHON" -c 'import sys, sysconfig; print(f"cp{sys.version_info.major}{sys.version_info.minor}-" + sysconfig.get_platform().replace("-", "_").replace(".", "_"))')
flags_hash=$(printf '%s' "$CMAKE_FLAGS" | sha256sum | cut -c1-8)
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/finesift/wheels
DIR="$CACHE/llama-cpp-python-$VERSION-$tag-$flags_hash"
mkdir -p "$CACHE"

have_wheel() { compgen -G "$DIR/llama_cpp_python-$VERSION-*.whl" >/dev/null; }

# One build at a time per machine: a second CI run waits for the first one's wheel.
exec 9>"$CACHE/.llama-cpp-python.lock"
flock 9
if have_wheel; then
  echo "llama-cpp-python $VERSION: cached wheel in $DIR"
else
  echo "llama-cpp-python $VERSION: building a wheel once (CMAKE_ARGS=$CMAKE_FLAGS); later runs reuse $DIR"
  work=$(mktemp -d "$CACHE/.build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  start=$SECONDS
  CMAKE_ARGS="$CMAKE_FLAGS" FORCE_CMAKE=1 "$PYTHON" -m pip wheel --no-deps --no-cache-dir \
    -w "$work" "llama-cpp-python==$VERSION"
  mkdir -p "$DIR"
  mv "$work"/llama_cpp_python-*.whl "$DIR"/
  echo "built in $((SECONDS - start)) s"
fi
flock -u 9

# The cached wheel only (never the source distribution), then its pure-Python dependencies.
"$PYTHON" -m pip install -q --no-deps --no-index --find-links "$DIR" "llama-cpp-python==$VERSION"
"$PYTHON" -m pip install -q --find-links "$DIR" "llama-cpp-python==$VERSION"
"$PYTHON" -c 'import llama_cpp; print("llama-cpp-python", llama_cpp.__version__, "installed")'
