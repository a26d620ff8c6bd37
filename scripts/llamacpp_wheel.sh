#!/usr/bin/env bash
# Install llama-cpp-python (the `llamacpp` extra's engine) into PYTHON's environment from a wheel
# cached under the user's cache dir, building the wheel once when the cache has none.
#
#   scripts/llamacpp_wheel.sh [PYTHON]        PYTHON defaults to `python` (the active venv's)
#
# llama-cpp-python ships only a source distribution on PyPI: every install compiles llama.cpp
# (about 4-5 minutes on a 2-core machine), here without the multimodal library finesift never loads
# (LLAVA_BUILD=OFF, most of the compile time). Two builds:
#   native    for the CPU it runs on (GGML_NATIVE=ON: -march=native, so AVX-512, AVX512-BF16 and VNNI
#             where the CPU has them) but without AMX (-mno-amx-*): ggml loads its AMX tile
#             configuration once per thread and assumes it stays, while PyTorch's oneDNN (finesift's
#             transformers path, bf16 on such CPUs) releases the tiles after each matmul; the next
#             llama_decode on that thread then dies with SIGILL at `tilezero` (found 2026-12-06,
#             docs/performance/gguf.md).
#   portable  AVX2/FMA/F16C: any x86-64 CPU since 2013.
# Every installed wheel is smoke-tested in its own process (scripts/llamacpp_smoke.py: a tiny GGUF
# quantized and decoded, around a PyTorch bf16 matmul where torch is installed); a death by signal
# or an error there fails the build. The build installed, and why, is printed ("build: ...") and
# written to <PYTHON's prefix>/finesift-llamacpp-build.txt, which `finesift doctor` shows.
# Wheels are kept in
#   ${XDG_CACHE_HOME:-~/.cache}/finesift/wheels/llama-cpp-python-<version>-<python>-<platform>-<build>-<key>/
# where <key> hashes the CMake flags and, for a native build, the CPU's model and flags: a wheel built
# for one CPU is never installed on another. A native wheel that failed to compile or failed its smoke
# test leaves <folder>.failed (the reason) and is not tried again on this machine (delete that file
# to retry). Environment:
#   LLAMACPP_VERSION     version to install (default: the pin in constraints/pinned.txt, else 0.3.16)
#   LLAMACPP_BUILD       auto (default): native, else portable (one line says why);
#                        native or portable: that build only, failing if it does not compile or pass
#   LLAMACPP_CMAKE_ARGS  CMake flags for the build (overrides LLAMACPP_BUILD; no fallback)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${1:-python}

pinned=$(sed -n 's/^llama-cpp-python==\([^ ;]*\).*/\1/p' constraints/pinned.txt 2>/dev/null | head -n 1)
VERSION=${LLAMACPP_VERSION:-${pinned:-0.3.16}}
COMMON="-DLLAVA_BUILD=OFF"
NO_AMX="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
NATIVE="-DGGML_NATIVE=ON -DCMAKE_C_FLAGS='$NO_AMX' -DCMAKE_CXX_FLAGS='$NO_AMX' $COMMON"
PORTABLE="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON $COMMON"
MODE=${LLAMACPP_BUILD:-auto}
case $MODE in
  auto | native) BUILD=native; FLAGS=$NATIVE ;;
  portable) BUILD=portable; FLAGS=$PORTABLE ;;
  *) echo "LLAMACPP_BUILD must be auto, native or portable, not '$MODE'" >&2; exit 2 ;;
esac
if [[ -n ${LLAMACPP_CMAKE_ARGS:-} ]]; then MODE=custom BUILD=custom FLAGS=$LLAMACPP_CMAKE_ARGS; fi
tag=$("$PYTHON" -c 'import sys, sysconfig; print(f"cp{sys.version_info.major}{sys.version_info.minor}-" + sysconfig.get_platform().replace("-", "_").replace(".", "_"))')
RECORD=$("$PYTHON" -c 'import sys; print(sys.prefix)')/finesift-llamacpp-build.txt
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
  # pip's build folder goes under $work too, so that a failed or killed build leaves nothing in /tmp
  if ! TMPDIR=$work CMAKE_ARGS="$2" FORCE_CMAKE=1 "$PYTHON" -m pip wheel --no-deps --no-cache-dir \
    -w "$work" "llama-cpp-python==$VERSION"; then
    rm -rf "$work"
    return 1
  fi
  mkdir -p "$dir"
  mv "$work"/llama_cpp_python-*.whl "$dir"/
  rm -rf "$work"
  echo "built in $((SECONDS - start)) s"
}

install() { # DIR: the cached wheel only (never the source distribution), then its pure-Python dependencies
  "$PYTHON" -m pip install -q --force-reinstall --no-deps --no-index --find-links "$1" "llama-cpp-python==$VERSION"
  "$PYTHON" -m pip install -q --find-links "$1" "llama-cpp-python==$VERSION"
}

smoke() { # -> 0 when the installed wheel decodes in a separate process; else prints why on stdout
  local log rc
  log=$(mktemp)
  if "$PYTHON" scripts/llamacpp_smoke.py >"$log" 2>&1; then
    tail -n 1 "$log" >&2
    rm -f "$log"
    return 0
  else
    rc=$?
  fi
  tail -n 15 "$log" >&2
  rm -f "$log"
  if ((rc > 128)); then
    echo "its smoke test died with SIG$(kill -l $((rc - 128)) 2>/dev/null || echo "NAL $((rc - 128))")"
  else
    echo "its smoke test failed (exit $rc)"
  fi
  return 1
}

# ensure BUILD FLAGS: the wheel installed and smoke-tested; non-zero (reason on stdout) if not
ensure() {
  local dir reason
  dir=$(dir_for "$1" "$2")
  if [[ -e "$dir.failed" ]]; then
    echo "it failed here before: $(cat "$dir.failed") ($dir.failed)"
    return 1
  fi
  if have_wheel "$dir"; then
    echo "llama-cpp-python $VERSION: cached $1 wheel in $dir" >&2
  elif ! build "$1" "$2" >&2; then
    echo "it did not compile" | tee "$dir.failed"
    return 1
  fi
  install "$dir" >&2 || { echo "pip could not install it"; return 1; }
  reason=$(smoke) && return 0
  # a wheel that does not run here is never tried again on this machine
  [[ $1 == portable ]] || echo "$reason" >"$dir.failed"
  echo "$reason"
  return 1
}

# One build at a time per machine: a second CI run waits for the first one's wheel.
exec 9>"$CACHE/.llama-cpp-python.lock"
flock 9
rm -rf "$CACHE"/.build.* # what a killed build left (builds never overlap: the lock)
NOTE=""
if ! why=$(ensure "$BUILD" "$FLAGS"); then
  if [[ $MODE != auto ]]; then
    echo "llama-cpp-python $VERSION: the $BUILD wheel is not usable here: $why" >&2
    exit 1
  fi
  echo "llama-cpp-python $VERSION: the native wheel is not usable here ($why); installing the portable wheel"
  NOTE="native not usable: $why"
  BUILD=portable FLAGS=$PORTABLE
  if ! why=$(ensure portable "$PORTABLE"); then
    echo "llama-cpp-python $VERSION: the portable wheel is not usable here either: $why" >&2
    exit 1
  fi
fi
flock -u 9

"$PYTHON" -c 'import llama_cpp; print("llama-cpp-python", llama_cpp.__version__, "installed")'
printf 'build: %s\nflags: %s\n%s' "$BUILD" "$FLAGS" "${NOTE:+note: $NOTE$'\n'}" >"$RECORD"
echo "build: $BUILD${NOTE:+ ($NOTE)}"
