#!/usr/bin/env bash
#  run.sh - installs what is missing, builds, and runs a cartmq cluster in
#  the foreground: redis-server, the broker (or several) and two cart
#  workers, with all local state under var/. Ctrl-C stops everything.
#
#  Usage: scripts/run.sh [--brokers N] [--redis MODE] [--no-build]
#    --brokers N   N brokers, all active, on ports 5555, 5556, ... (default
#                  1); each worker registers with every one of them
#    --redis MODE  single (default), sentinel (a Sentinel set) or cluster
#                  (a Redis Cluster), see scripts/redis-topology.sh
#    --no-build    skip scripts/deps.sh and the build (use what is built)
#  Environment: CARTMQ_REDIS_PORT (6390), CARTMQ_BROKER_PORT (5555, the
#  first broker's port), CARTMQ_STATE_DIR (var), CARTMQ_BUILD_DIR (build).
set -euo pipefail
cd "$(dirname "$0")/.."

brokers=1
redis_mode=single
build=yes
while [ $# -gt 0 ]; do
    case $1 in
        --brokers)
            [ $# -ge 2 ] || { echo "run.sh: --brokers needs a number" >&2; exit 2; }
            brokers=$2
            shift 2 ;;
        --brokers=*) brokers=${1#--brokers=}; shift ;;
        --redis)
            [ $# -ge 2 ] || { echo "run.sh: --redis needs single, sentinel or cluster" >&2; exit 2; }
            redis_mode=$2
            shift 2 ;;
        --redis=*) redis_mode=${1#--redis=}; shift ;;
        --no-build) build=no; shift ;;
        -h|--help) sed -n '2,13s/^#  \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
if ! [[ $brokers =~ ^[1-9]$ ]]; then
    echo "run.sh: --brokers takes 1 to 9, not '$brokers'" >&2
    exit 2
fi
case "$redis_mode" in
    single | sentinel | cluster) ;;
    *) echo "run.sh: --redis must be single, sentinel or cluster" >&2; exit 2 ;;
esac

bin=${CARTMQ_BUILD_DIR:-build}
if [ "$build" = yes ]; then
    scripts/deps.sh
    cmake -S . -B "$bin" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$bin" -j"$(nproc)"
fi

state=${CARTMQ_STATE_DIR:-$PWD/var}
mkdir -p "$state/redis"
#  Its own port, so a system redis-server on 6379 is left alone.
redis_port=${CARTMQ_REDIS_PORT:-6390}
first_port=${CARTMQ_BROKER_PORT:-5555}
pids=()
stop() {
    trap - INT TERM EXIT
    echo "stopping cluster"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait || true
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

source scripts/redis-topology.sh
"redis_topology_$redis_mode"
#  Workers would answer 503 until Redis listens: give it up to 5 s.
for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null && break
    sleep 0.1
done

#  Brokers share nothing: each is the config file's broker on its own port
#  (a --bind flag replaces the file's list). Every worker connects to all.
endpoints=()
connects=()
for ((i = 0; i < brokers; i++)); do
    endpoint=tcp://127.0.0.1:$((first_port + i))
    endpoints+=("$endpoint")
    connects+=(--connect "$endpoint")
    "$bin"/broker/cartmq-broker --config config/cartmq.cfg --bind "$endpoint" &
    pids+=($!)
done
"$bin"/worker/cartmq-worker --config config/cartmq.cfg "${connects[@]}" \
    --redis "$redis_url" --processes 2 &
pids+=($!)

list=$(IFS=,; echo "${endpoints[*]}")
if [ "$brokers" -eq 1 ]; then
    echo "cartmq running: broker $list, redis $redis_url, state in $state." \
         "Try: $bin/client/cartmq get alice"
else
    echo "cartmq running: $brokers brokers $list, redis $redis_url," \
         "state in $state. Try: $bin/client/cartmq --connect $list get alice"
fi
wait -n || true
