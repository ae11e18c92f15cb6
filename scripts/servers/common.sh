# Shared helpers for the scripts in scripts/servers/. Source it; do not run it.
#
# Sets: REPO_ROOT (the clone this file sits in), SERVERS_DIR (.cache/servers),
#       LOG_DIR (.cache/servers/logs), SERVER_MODEL (the GGUF the start-*
#       scripts serve: $INFERBENCH_SERVER_MODEL or the Gemma 3 270M Q4_K_M GGUF).
#       LLAMA_SERVER_SDIST (the llama-cpp-python sdist whose vendor/llama.cpp
#       llama-server is built from).
# Helpers: log, die, need_port, need_model, model_name, make_venv, wait_ready,
#          start_background, http_answers, llama_server_source.

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SERVERS_DIR="$REPO_ROOT/.cache/servers"
LOG_DIR="$SERVERS_DIR/logs"
SERVER_MODEL=${INFERBENCH_SERVER_MODEL:-$REPO_ROOT/.cache/models/gemma-3-270m-q4_k_m.gguf}
PYTHON=${PYTHON:-python3}
LLAMA_SERVER_SDIST=0.3.36

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

# llama_server_source: prints the llama.cpp tree vendored in the pinned
# llama-cpp-python sdist, downloading (pip, PyPI only) and unpacking it into
# $SERVERS_DIR/src first where needed.
llama_server_source() {
  local src_root="$SERVERS_DIR/src"
  local src="$src_root/llama_cpp_python-$LLAMA_SERVER_SDIST"
  mkdir -p "$src_root"
  if [ ! -f "$src/vendor/llama.cpp/CMakeLists.txt" ]; then
    local sdist="$src_root/llama_cpp_python-$LLAMA_SERVER_SDIST.tar.gz"
    if [ ! -f "$sdist" ]; then
      log "downloading llama-cpp-python==$LLAMA_SERVER_SDIST sdist from PyPI"
      "$PYTHON" -m pip download --quiet --no-deps --no-binary :all: \
        -d "$src_root" "llama-cpp-python==$LLAMA_SERVER_SDIST" >&2
    fi
    tar -xzf "$sdist" -C "$src_root"
  fi
  [ -f "$src/vendor/llama.cpp/CMakeLists.txt" ] || die "no llama.cpp tree in $src"
  echo "$src/vendor/llama.cpp"
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
