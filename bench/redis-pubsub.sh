#!/usr/bin/env bash
# What one Redis costs per published message when S connections are subscribed to its channel
# (the instances of a scaled-out wfs, each subscribed to every city it has subscribers for):
# PUBLISH throughput and Redis CPU per message, on 127.0.0.1, bounded in count and time.
# Redis is pinned to core 0 and redis-benchmark to core 1, as `cargo xtask bench` pins.
# Usage: redis-pubsub.sh [SUBSCRIBERS] [MESSAGES]   (defaults 16 and 200000)
set -euo pipefail
subscribers="${1:-16}"; messages="${2:-200000}"
port=$((20000 + RANDOM % 20000)); dir="$(mktemp -d)"
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
taskset -c 0 redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >/dev/null &
redis=$!
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
for _ in $(seq "$subscribers"); do
  timeout 120 taskset -c 1 redis-cli -p "$port" subscribe wfs:alert:bench >/dev/null &
done
sleep 0.5
# A frame the size of an alert (about 300 bytes, as wfs publishes it).
payload="$(head -c 300 /dev/zero | tr '\0' 'x')"
ticks() { awk '{print $14 + $15}' "/proc/$redis/stat"; }
before=$(ticks)
start=$(date +%s.%N)
timeout 120 taskset -c 1 redis-benchmark -p "$port" -q -n "$messages" -c 4 publish wfs:alert:bench "$payload" \
  | tr '\r' '\n' | tail -1 | sed 's/^.*: //'
end=$(date +%s.%N)
after=$(ticks)
hz=$(getconf CLK_TCK)
awk -v t=$((after - before)) -v hz="$hz" -v n="$messages" -v s="$subscribers" -v start="$start" -v end="$end" \
  'BEGIN { w = end - start; printf "%d messages to %d subscribers in %.2f s: Redis CPU %.2f s, %.2f us per message, %.2f us per delivery\n", n, s, w, t/hz, t/hz*1e6/n, t/hz*1e6/(n*s) }'
