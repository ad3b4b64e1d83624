# shellcheck shell=bash disable=SC2154,SC2034
#  redis-topology.sh - sourced by run.sh: starts Redis for the local cluster
#  as one redis-server, a Sentinel set (1 master, 2 replicas, 3 sentinels,
#  quorum 2) or a Redis Cluster (3 masters, 3 replicas), all under
#  $state/redis, on ports from $redis_port up. Appends every pid to pids
#  and sets redis_url to the worker's --redis URL.

redis_common=(--bind 127.0.0.1 --save '' --appendonly yes --daemonize no)

redis_topology_single() {
    mkdir -p "$state/redis"
    redis-server --port "$redis_port" --dir "$state/redis" "${redis_common[@]}" \
        --logfile "$state/redis/redis.log" &
    pids+=($!)
    redis_url="redis://127.0.0.1:$redis_port/0"
}

redis_topology_sentinel() {
    local master=$redis_port dir port i sentinels=()
    for i in 0 1 2; do
        port=$((redis_port + i)) dir="$state/redis/node-$port"
        mkdir -p "$dir"
        local replica=()
        [ "$i" -eq 0 ] || replica=(--replicaof 127.0.0.1 "$master")
        redis-server --port "$port" --dir "$dir" "${redis_common[@]}" \
            --logfile "$dir/redis.log" "${replica[@]}" &
        pids+=($!)
    done
    for i in 0 1 2; do
        port=$((redis_port + 10 + i)) dir="$state/redis/sentinel-$port"
        mkdir -p "$dir"
        #  A sentinel rewrites its file: a fresh one each run.
        cat >"$dir/sentinel.conf" <<CONF
port $port
bind 127.0.0.1
dir $dir
logfile $dir/sentinel.log
sentinel monitor cart 127.0.0.1 $master 2
sentinel down-after-milliseconds cart 2000
sentinel failover-timeout cart 10000
CONF
        redis-sentinel "$dir/sentinel.conf" &
        pids+=($!)
        sentinels+=("127.0.0.1:$port")
    done
    redis_url="redis-sentinel://$(IFS=,; echo "${sentinels[*]}")/0#cart"
}

redis_topology_cluster() {
    local port dir nodes=() i
    for i in 0 1 2 3 4 5; do
        port=$((redis_port + i)) dir="$state/redis/node-$port"
        mkdir -p "$dir"
        redis-server --port "$port" --dir "$dir" "${redis_common[@]}" \
            --logfile "$dir/redis.log" --cluster-enabled yes \
            --cluster-config-file nodes.conf --cluster-node-timeout 2000 &
        pids+=($!)
        nodes+=("127.0.0.1:$port")
    done
    for port in $(seq "$redis_port" $((redis_port + 5))); do
        until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
    done
    #  A cluster made on an earlier run comes back from its nodes.conf.
    if ! redis-cli -p "$redis_port" cluster info | grep -q cluster_state:ok; then
        sleep 1
        redis-cli -p "$redis_port" cluster info | grep -q cluster_state:ok ||
            redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 \
                --cluster-yes >"$state/redis/create.log"
    fi
    redis_url="redis-cluster://${nodes[0]},${nodes[1]},${nodes[2]}"
}
