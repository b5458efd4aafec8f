#!/usr/bin/env bash
# Server CPU per keepalive ping: a release `wfs serve` (core 0) holding 10,000 idle echo
# connections opened by `wfs-bench idle` (core 1), its CPU time over 10 s with a ping every
# second, and without pings as the baseline. The load generator does not read while it holds
# the connections, so the pongs are not counted, and the idle timeout is set far out.
# Bounded in time; 127.0.0.1 only. Build first: cargo build --release -p wfs -p wfs-bench
# Usage: bench/ping-cost.sh
set -u
cd "$(dirname "$0")/.."
bin="${CARGO_TARGET_DIR:-target}/release"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for interval in 3600 1; do
  # Below the ephemeral range (32768 and up), where the 10,000 client sockets of the run
  # before may still hold a port.
  dir=$(mktemp -d); port=$((20000 + RANDOM % 10000))
  taskset -c 0 "$bin/wfs" serve --data-dir "$dir" --listen "127.0.0.1:$port" \
    --ping-interval "$interval" --idle-timeout 7200 --max-connections 20000 \
    --max-connections-per-ip 100000 >"$dir/log" 2>&1 &
  server=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  timeout 60 taskset -c 1 "$bin/wfs-bench" --server "127.0.0.1:$port" idle \
    --connections 10000 --settle 20 >"$dir/bench" 2>&1 &
  bench=$!
  sleep 8  # the connections are open and settled
  before=$(ticks "$server"); sleep 10; after=$(ticks "$server")
  hz=$(getconf CLK_TCK)
  echo "ping every ${interval} s: server CPU $(( (after - before) * 1000 / hz )) ms in 10 s with 10,000 connections"
  wait "$bench"; kill "$server"; wait "$server" 2>/dev/null; rm -rf "$dir"
done
