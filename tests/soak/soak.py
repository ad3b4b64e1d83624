#!/usr/bin/python3
"""soak.py - the chaos mix of tests/harness/test_chaos.py, for as long as asked.

A redis-server, a broker and four cart workers (one with --concurrency 4,
one "steady" worker that chaos never touches, so its memory can be
followed). Client threads make logical cart calls with request_ids and
retries the whole time (test_chaos.CartLoad). Chaos: a worker SIGKILLed
and restarted every --kill-every seconds, a worker SIGSTOPped past its
expiry every --stop-every seconds, redis-server restarted (keeping its
data) at 5% of the run and the broker (same port) at 10%.

Reports requests served, errors, re-dispatches, and the RSS of the broker
(after its restart, and at the end) and of the steady worker at start and
end, sampled every 10 s. Exits 1 on any failed call or cart mismatch.

Usage: tests/soak/soak.py --duration SECONDS [--build DIR]  (or scripts/soak.sh)
"""

import argparse
import os
import random
import shutil
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
HARNESS = os.path.join(REPO, "tests", "harness")

WARM_S = 5.0
SAMPLE_S = 10.0


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, required=True, help="seconds")
    parser.add_argument("--build", default=os.path.join(REPO, "build"))
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--kill-every", type=float, default=3.0)
    parser.add_argument("--stop-every", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep-logs", action="store_true")
    return parser.parse_args()


def mb(kb):
    return "%.1f" % (kb / 1024.0) if kb is not None else "?"


def main():
    args = parse_args()
    if args.duration < 30:
        sys.exit("soak: --duration must be at least 30 s")
    #  support.py reads the build directory when it is imported.
    os.environ["CARTMQ_BUILD_DIR"] = os.path.abspath(args.build)
    sys.path.insert(0, HARNESS)
    import support
    import test_chaos
    from support import HB_MS, LIVENESS, Broker, RedisServer, Worker

    for binary in (support.BROKER_BIN, support.WORKER_BIN):
        if not binary.exists():
            sys.exit("soak: %s missing; build first" % binary)
    logdir = tempfile.mkdtemp(prefix="cartmq-soak.")
    sockdir = tempfile.mkdtemp(prefix="cmq")
    procs = []
    begun = time.monotonic()

    def say(text):
        print("soak: %7.1fs %s" % (time.monotonic() - begun, text), flush=True)

    load = None
    ok = False
    try:
        redis = RedisServer(logdir, sockdir).start()
        procs.append(redis)
        broker = Broker(logdir, (), HB_MS, LIVENESS, name="broker").start()
        procs.append(broker)
        endpoint = broker.endpoint

        def worker(name, *extra):
            proc = Worker(logdir, endpoint, redis.url, extra, HB_MS, LIVENESS, name=name)
            procs.append(proc)
            return proc.start()

        steady = worker("worker-steady")
        victims = [worker("worker-1"), worker("worker-2"),
                   worker("worker-3", "--concurrency", "4")]
        if not support.wait_workers(endpoint, "cart", 4, support.START_S):
            sys.exit("soak: workers did not register")
        chaos = test_chaos.Chaos(redis, broker, victims, random.Random(args.seed), say)
        load = test_chaos.CartLoad(endpoint, clients=args.clients, prefix="soak",
                                   seed=args.seed).start()
        say("running %.0f s: %d client threads, broker %s, logs in %s"
            % (args.duration, args.clients, endpoint, logdir))

        end_at = begun + args.duration
        redis_at = begun + max(WARM_S + 2, 0.05 * args.duration)
        broker_at = begun + max(WARM_S + 8, 0.10 * args.duration)
        next_kill = begun + WARM_S + args.kill_every
        next_stop = begun + WARM_S + args.stop_every / 2
        next_sample = begun + WARM_S
        rss = {"broker-1": [], "broker-2": [], "steady": []}
        broker_run = "broker-1"
        broker_restarted_at = None
        while time.monotonic() < end_at:
            now = time.monotonic()
            if now >= next_sample:
                rss[broker_run].append(test_chaos.rss_kb(broker.pid))
                rss["steady"].append(test_chaos.rss_kb(steady.pid))
                next_sample = now + SAMPLE_S
            if redis_at and now >= redis_at:
                chaos.restart_redis()
                redis_at = None
            elif broker_at and now >= broker_at:
                rss[broker_run].append(test_chaos.rss_kb(broker.pid))
                chaos.restart_broker()
                broker_run = "broker-2"
                broker_at = None
                broker_restarted_at = time.monotonic()
                next_sample = broker_restarted_at + WARM_S
            elif now >= next_stop:
                chaos.stop_worker_past_expiry()
                next_stop = time.monotonic() + args.stop_every
            elif now >= next_kill:
                chaos.kill_worker()
                next_kill = time.monotonic() + args.kill_every
            else:
                time.sleep(0.1)
        rss[broker_run].append(test_chaos.rss_kb(broker.pid))
        rss["steady"].append(test_chaos.rss_kb(steady.pid))
        chaos.resume_all()
        ended = load.stop()
        say("load stopped%s" % ("" if ended else " (some client threads still busy)"))
        support.wait_workers(endpoint, "cart", 4, support.START_S)
        problems = load.verify()
        final = support.stats(endpoint) or {}
        summary = test_chaos.report(load, chaos, "soak")
        elapsed = time.monotonic() - begun
        print(summary)
        print("soak: requests served: %d logical calls with a 200 in %.0f s (%.0f/s), "
              "%d attempts, %d retries; errors: %d failed calls, %d cart mismatches"
              % (load.total_calls(), elapsed, load.total_calls() / elapsed, load.attempts,
                 load.retries, len(load.failures), len(problems)))
        series = rss["broker-2"] or [None]
        print("soak: broker (after its restart at %.0f s) RSS start %s MB, end %s MB; "
              "samples every %.0f s: %s"
              % ((broker_restarted_at or begun) - begun, mb(series[0]), mb(series[-1]),
                 SAMPLE_S, " ".join(mb(kb) for kb in series)))
        print("soak: broker before its restart: RSS %s"
              % " ".join(mb(kb) for kb in rss["broker-1"]))
        print("soak: steady worker RSS start %s MB, end %s MB; samples: %s"
              % (mb(rss["steady"][0]), mb(rss["steady"][-1]),
                 " ".join(mb(kb) for kb in rss["steady"])))
        print("soak: broker's own counters since restart: requests %s, replies %s, "
              "redispatched %s, dropped %s, invalid %s"
              % (final.get("requests"), final.get("replies"), final.get("redispatched"),
                 final.get("dropped"), final.get("invalid")))
        for failure in load.failures[:10]:
            print("soak: FAILED CALL " + failure)
        for problem in problems[:10]:
            print("soak: CART MISMATCH " + problem)
        ok = ended and not load.failures and not problems
        print("soak: %s" % ("PASS" if ok else "FAIL"))
    finally:
        if load is not None:
            load.stop_event.set()
        for proc in sorted(procs, key=lambda p: p.RANK):
            proc.send_signal(signal.SIGCONT)
            proc.stop()
        shutil.rmtree(sockdir, ignore_errors=True)
        if ok and not args.keep_logs:
            shutil.rmtree(logdir, ignore_errors=True)
        else:
            print("soak: logs kept in %s" % logdir)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
