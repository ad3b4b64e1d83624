#!/usr/bin/env bash
#  valgrind.sh - one end-to-end run with the broker and a cart worker under
#  valgrind (memcheck, full leak check): a real redis-server, a mixed
#  workload through the cartmq CLI, a worker killed mid-run so requests are
#  re-dispatched, then SIGTERM. Fails on any error or definite/indirect
#  leak in either program.
#  Usage: scripts/valgrind.sh [BUILD_DIR]   (default build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
work=$(mktemp -d /tmp/cartmq-valgrind.XXXXXX)
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
broker_port=$(port); redis_port=$(port)
endpoint=tcp://127.0.0.1:$broker_port
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

vg=(valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect
    --errors-for-leak-kinds=definite,indirect --error-exitcode=99
    --track-origins=no)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' \
    --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
"${vg[@]}" --log-file="$work/broker.vg" "$build/broker/cartmq-broker" \
    --bind "$endpoint" --heartbeat-ms 1000 2>"$work/broker.log" &
broker=$!; pids+=($broker)
"${vg[@]}" --log-file="$work/worker.vg" "$build/worker/cartmq-worker" \
    --connect "$endpoint" --redis "redis://127.0.0.1:$redis_port/0" \
    --heartbeat-ms 1000 --concurrency 4 2>"$work/worker.log" &
worker=$!; pids+=($worker)
#  A second, plain worker that is killed mid-run.
"$build/worker/cartmq-worker" --connect "$endpoint" \
    --redis "redis://127.0.0.1:$redis_port/0" --heartbeat-ms 1000 \
    2>"$work/worker2.log" &
victim=$!; pids+=($victim)

cli=("$build/client/cartmq" --connect "$endpoint" --timeout-ms 5000)
for attempt in $(seq 1 100); do
    "${cli[@]}" services 2>/dev/null | grep -q cart && break
    sleep 0.2
done
for n in $(seq 1 20); do
    "${cli[@]}" add "user$((n % 3))" "sku-$n" --name "item $n" \
        --quantity 2 --price 100 --request-id "r$n" >/dev/null
    [ "$n" = 10 ] && kill -KILL "$victim"
done
"${cli[@]}" get user1 >/dev/null
"${cli[@]}" update user1 sku-1 --quantity 5 >/dev/null || true
"${cli[@]}" remove user2 sku-2 >/dev/null || true
"${cli[@]}" remove user2 no-such-item >/dev/null || true
"${cli[@]}" clear user0 >/dev/null
"${cli[@]}" stats --json >/dev/null
/usr/bin/python3 - "$endpoint" <<'PY'
import sys, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.DEALER); s.linger = 0; s.connect(sys.argv[1])
for frames in ([b"", b"BOGUS"], [b"", b"MDPW01", b"\x09"], [b"", b"MDPC01"],
               [b"", b"MDPW01", b"\x03", b"x", b"", b"forged"]):
    s.send_multipart(frames)
ctx.destroy()
PY

status=0
for pid in $worker $broker; do
    kill -TERM "$pid"
    if ! wait "$pid"; then status=1; fi
done
for name in broker worker; do
    if [ -s "$work/$name.vg" ]; then
        echo "valgrind: $name reported:"; cat "$work/$name.vg"; status=1
    else
        echo "valgrind: $name clean (no errors, no leaks)"
    fi
done
[ $status = 0 ] || { tail -20 "$work"/*.log; }
exit $status
