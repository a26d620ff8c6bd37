#!/usr/bin/env bash
# Install llama-cpp-python (the `llamacpp` extra's engine) into PYTHON's environment from a wheel
# cached under the user's cache dir, building the wheel once when the cache has none.
#
#   scripts/llamacpp_wheel.sh [PYTHON]        PYTHON defaults to `python` (the active venv's)
#
# llama-cpp-python ships only a source distribution on PyPI: every install compiles llama.cpp
# (about 4-5 minutes on a 2-core machine). The default wheel is portable (AVX2/FMA/F16C, any x86-64 CPU
# since 2013), without the multimodal library finesift never loads (LLAVA_BUILD=OFF, most of the compile
# time). LLAMACPP_BUILD=native builds for the CPU it runs on instead (GGML_NATIVE=ON: -march=native, so
# AVX-512, AVX512-BF16, VNNI and AMX where the CPU reports them); it is opt-in because on the shared
# development VM (2026-12-06) the native wheel died with SIGILL ("Illegal instruction") in llama_decode:
# the CPU advertised instructions the VM does not execute. Wheels are kept in
#   ${XDG_CACHE_HOME:-~/.cache}/finesift/wheels/llama-cpp-python-<version>-<python>-<platform>-<build>-<key>/
# where <key> hashes the CMake flags and, for a native build, the CPU's model and flags: a wheel built
# for one CPU is never installed on another. Later runs on the same machine install it in seconds.
# If a native build fails to compile, the portable wheel is built instead, once; the log line
# "build: native|portable" says which one is installed. Environment:
#   LLAMACPP_VERSION     version to install (default: the pin in constraints/pinned.txt, else 0.3.16)
#   LLAMACPP_BUILD       portable (default) or native (see above)
#   LLAMACPP_CMAKE_ARGS  CMake flags for the build (overrides LLAMACPP_BUILD)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${1:-python}

pinned=$(sed -n 's/^llama-cpp-python==\([^ ;]*\).*/\1/p' constraints/pinned.txt 2>/dev/null | head -n 1)
VERSION=${LLAMACPP_VERSION:-${pinned:-0.3.16}}
COMMON="-DLLAVA_BUILD=OFF"
NATIVE="-DGGML_NATIVE=ON $COMMON"
PORTABLE="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON $COMMON"
case ${LLAMACPP_BUILD:-portable} in
  native) BUILD=native; FLAGS=$NATIVE ;;
  portable) BUILD=portable; FLAGS=$PORTABLE ;;
  *) echo "LLAMACPP_BUILD must be native or portable, not '$LLAMACPP_BUILD'" >&2; exit 2 ;;
esac
if [[ -n ${LLAMACPP_CMAKE_ARGS:-} ]]; then BUILD=custom; FLAGS=$LLAMACPP_CMAKE_ARGS; fi
tag=$("$PYTHON" -c 'import sys, sysconfig; print(f"cp{sys.version_info.major}{sys.version_info.minor}-" + sysconfig.get_platform().replace("-", "_").replace(".", "_"))')
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/finesift/wheels
mkdir -p "$CACHE"

# The cache key: the flags, plus the CPU for a build that depends on it (native, or custom flags).
cpu_id() { grep -m2 -E '^(model name|flags)' /proc/cpuinfo 2>/dev/null || true; }
dir_for() { # BUILD FLAGS -> the wheel folder
  local key=$2
  [[ $1 == portable ]] || key="$key|$(cpu_id)"
  echo "$CACHE/llama-cpp-python-$VERSION-$tag-$1-$(printf '%s' "$key" | sha256sum | cut -c1-8)"
}
have_wheel() { compgen -G "$1/llama_cpp_python-$VERSION-*.whl" >/dev/null; }

build() { # BUILD FLAGS: build the wheel into its folder; non-zero if the compile fails
  local dir work start
  dir=$(dir_for "$1" "$2")
  echo "llama-cpp-python $VERSION: building a $1 wheel once (CMAKE_ARGS=$2); later runs reuse $dir"
  work=$(mktemp -d "$CACHE/.build.XXXXXX")
  start=$SECONDS
  if ! CMAKE_ARGS="$2" FORCE_CMAKE=1 "$PYTHON" -m pip wheel --no-deps --no-cache-dir \
    -w "$work" "llama-cpp-python==$VERSION"; then
    rm -rf "$work"
    return 1
  fi
  mkdir -p "$dir"
  mv "$work"/llama_cpp_python-*.whl "$dir"/
  rm -rf "$work"
  echo "built in $((SECONDS - start)) s"
}

# One build at a time per machine: a second CI run waits for the first one's wheel.
exec 9>"$CACHE/.llama-cpp-python.lock"
flock 9
DIR=$(dir_for "$BUILD" "$FLAGS")
PORTABLE_DIR=$(dir_for portable "$PORTABLE")
if have_wheel "$DIR"; then
  echo "llama-cpp-python $VERSION: cached $BUILD wheel in $DIR"
elif [[ $BUILD == native ]] && have_wheel "$PORTABLE_DIR" && [[ -e "$DIR.failed" ]]; then
  # the native build failed on this machine before: do not spend minutes failing again
  echo "llama-cpp-python $VERSION: the native build failed here before ($DIR.failed); using the portable wheel"
  BUILD=portable DIR=$PORTABLE_DIR
elif ! build "$BUILD" "$FLAGS"; then
  [[ $BUILD == native ]] || exit 1
  echo "llama-cpp-python $VERSION: the native build failed; building the portable wheel instead" >&2
  touch "$DIR.failed"
  BUILD=portable DIR=$PORTABLE_DIR
  have_wheel "$DIR" || build portable "$PORTABLE"
fi
flock -u 9

# The cached wheel only (never the source distribution), then its pure-Python dependencies.
"$PYTHON" -m pip install -q --force-reinstall --no-deps --no-index --find-links "$DIR" "llama-cpp-python==$VERSION"
"$PYTHON" -m pip install -q --find-links "$DIR" "llama-cpp-python==$VERSION"
"$PYTHON" -c 'import llama_cpp; print("llama-cpp-python", llama_cpp.__version__, "installed")'
echo "build: $BUILD"
