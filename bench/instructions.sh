#!/usr/bin/env bash
# User-space instructions per operation, wfs against the ceiling, under valgrind's callgrind:
# counts that a noisy host does not move, where the CPU-time figures of `cargo xtask bench`
# move by 10 % and more from run to run. Kernel work is not counted: per echo and per
# delivery both servers make the same system calls (one `recvfrom` and one `sendto` per echo,
# one `sendto` per delivery), so user space is where they differ. Servers run some 50 times
# slower under callgrind, so the counts include the batching such a slow server sees.
#   echo:   each server (core 0) gets a warm-up echo run of `wfs-bench` (core 1), then its
#           counters are zeroed, 8 connections echo for 10 s, and the counters are dumped.
#   fanout: the six-city shape at a size callgrind can carry (600 subscribers over six
#           cities, alerts 200 ms apart, wfs's through its REST API and store), once with 30
#           alerts and once with 90 on fresh servers: the difference of the two counts over
#           the difference of the deliveries (6,000) is the cost of one delivery, the
#           publication's share included, with start-up and connecting cancelled out.
# Bounded in time; 127.0.0.1 only. Needs valgrind. Build first:
#   cargo build --release -p wfs -p wfs-bench
# Usage: bench/instructions.sh echo|fanout
set -u
cd "$(dirname "$0")/.."
bin="${CARGO_TARGET_DIR:-target}/release"
scenario="${1:-}"
case "$scenario" in
  echo | fanout) ;;
  *) echo "usage: bench/instructions.sh echo|fanout" >&2; exit 2 ;;
esac
for program in "$bin/wfs" "$bin/wfs-bench" "$bin/wfs-bench-ceiling"; do
  if [ ! -x "$program" ]; then
    echo "$program not found: cargo build --release -p wfs -p wfs-bench first" >&2
    exit 2
  fi
done
if ! command -v callgrind_control >/dev/null; then
  echo "valgrind not found: apt-get install valgrind" >&2
  exit 2
fi

# Starts `$1` (wfs or ceiling) under callgrind in $dir on $port; sets $pid and $login.
start() {
  record=(valgrind --tool=callgrind "--callgrind-out-file=$dir/callgrind.%p")
  if [ "$1" = wfs ]; then
    # A slow server must not time out the publisher's kept-alive connection while the
    # subscribers connect, nor refuse 600 connections from one address.
    WFS_ADMIN_PASSWORD=bench taskset -c 0 "${record[@]}" "$bin/wfs" serve \
      --data-dir "$dir/data" --listen "127.0.0.1:$port" --ping-interval 3600 \
      --idle-timeout 7200 --header-timeout 300 --max-connections-per-ip 100000 \
      >"$dir/log" 2>&1 &
    login=(--login admin:bench)
  else
    taskset -c 0 "${record[@]}" "$bin/wfs-bench-ceiling" --listen "127.0.0.1:$port" \
      >"$dir/log" 2>&1 &
    login=()
  fi
  pid=$!
  for _ in $(seq 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
}

# Dumps the counters of $pid, stops it, and prints the instructions since the last zero (or
# the start): the dump is the file numbered .1.
stop() {
  callgrind_control --dump "$pid" >/dev/null 2>&1
  sleep 1
  kill "$pid"; wait "$pid" 2>/dev/null
  awk '/^(summary|totals):/ {print $2; exit}' "$dir"/callgrind.*.1
}

# The field `$2` of the JSON line `wfs-bench` printed last into file `$1`; for a failed run
# (no such line), what the load generator and the server said, and a failure.
field() {
  python3 -c 'import json, sys
print(json.loads(open(sys.argv[1]).read().strip().split("\n")[-1])[sys.argv[2]])' "$1" "$2" \
    2>/dev/null && return
  echo "wfs-bench gave no result against $server; it said:" >&2
  tail -5 "$dir/run.err" >&2
  echo "and the server:" >&2
  tail -5 "$dir/log" >&2
  return 1
}

for server in wfs ceiling; do
  # Below the ephemeral range (32768 and up), where client sockets may still hold a port.
  port=$((20000 + RANDOM % 10000))
  generator=(timeout 300 taskset -c 1 "$bin/wfs-bench" --server "127.0.0.1:$port")
  if [ "$scenario" = echo ]; then
    dir=$(mktemp -d)
    start "$server"
    "${generator[@]}" echo --connections 8 --warmup 0 --duration 3 >/dev/null 2>&1
    callgrind_control --zero "$pid" >/dev/null 2>&1
    "${generator[@]}" echo --connections 8 --warmup 0 --duration 10 >"$dir/run.json" \
      2>"$dir/run.err"
    instructions=$(stop)
    echoes=$(field "$dir/run.json" messages) || exit 1
    echo "$server: $echoes echoes, $instructions instructions, $((instructions / echoes)) per echo"
    rm -rf "$dir"
  else
    counted=()
    for alerts in 30 90; do
      dir=$(mktemp -d)
      start "$server"
      "${generator[@]}" "${login[@]}" fanout --subscribers 600 --cities 6 \
        --alerts "$alerts" --interval-ms 200 --drain 30 >"$dir/run.json" 2>"$dir/run.err"
      instructions=$(stop)
      delivered=$(field "$dir/run.json" delivered) || exit 1
      lost=$(field "$dir/run.json" lost) || exit 1
      echo "$server, $alerts alerts: $delivered delivered, $lost lost, $instructions instructions"
      counted+=("$instructions" "$delivered")
      rm -rf "$dir"
    done
    per=$(((counted[2] - counted[0]) / (counted[3] - counted[1])))
    echo "$server: $per instructions per delivery"
  fi
done
