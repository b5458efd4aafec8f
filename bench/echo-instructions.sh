#!/usr/bin/env bash
# User-space instructions per echo, wfs against the ceiling, under valgrind's callgrind: a
# count that does not move with a noisy host, where the CPU-time figures of `cargo xtask
# bench` move by 10 % and more from run to run. Each server (core 0) gets a warm-up echo run
# of `wfs-bench` (core 1), then its counters are zeroed, then 8 connections echo for 10 s and
# the counters are dumped. Kernel work is not counted: both make one `recvfrom` and one
# `sendto` per echo (see docs/benchmarks.md), so user space is where they differ. Servers run
# ~50 times slower under callgrind, so the count includes batching at that speed.
# Bounded in time; 127.0.0.1 only. Needs valgrind. Build first:
#   cargo build --release -p wfs -p wfs-bench
# Usage: bench/echo-instructions.sh
set -u
cd "$(dirname "$0")/.."
bin="${CARGO_TARGET_DIR:-target}/release"
for server in wfs ceiling; do
  dir=$(mktemp -d); port=$((20000 + RANDOM % 10000))
  record=(valgrind --tool=callgrind "--callgrind-out-file=$dir/callgrind.%p")
  if [ "$server" = wfs ]; then
    taskset -c 0 "${record[@]}" "$bin/wfs" serve --data-dir "$dir/data" \
      --listen "127.0.0.1:$port" >"$dir/log" 2>&1 &
  else
    taskset -c 0 "${record[@]}" "$bin/wfs-bench-ceiling" --listen "127.0.0.1:$port" \
      >"$dir/log" 2>&1 &
  fi
  pid=$!
  for _ in $(seq 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  echo_for() {
    timeout 60 taskset -c 1 "$bin/wfs-bench" --server "127.0.0.1:$port" echo \
      --connections 8 --warmup 0 --duration "$1"
  }
  echo_for 3 >/dev/null 2>&1
  callgrind_control --zero "$pid" >/dev/null 2>&1
  echo_for 10 >"$dir/echo.json" 2>/dev/null
  callgrind_control --dump "$pid" >/dev/null 2>&1
  sleep 1
  kill "$pid"; wait "$pid" 2>/dev/null
  messages=$(python3 -c 'import json, sys
print(json.loads(open(sys.argv[1]).read().split("\n")[-2])["messages"])' "$dir/echo.json")
  # The dump after the zero is the file numbered .1.
  instructions=$(awk '/^(summary|totals):/ {print $2; exit}' "$dir"/callgrind.*.1)
  echo "$server: $messages echoes, $instructions instructions, $((instructions / messages)) per echo"
  rm -rf "$dir"
done
