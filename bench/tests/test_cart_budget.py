"""Tests of bench/cart_budget.py's pure parts: the /proc and strace
parsers (procstat.py), variant specs, the per-request arithmetic and the
markdown tables (budget_table.py).

    /usr/bin/python3 -m pytest -q -p no:cacheprovider bench/tests
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import budget_table  # noqa: E402
import cart_budget  # noqa: E402
import procstat  # noqa: E402

#  /proc/PID/stat of a process whose name holds a blank and a ')':
#  utime 1234 and stime 567 are fields 14 and 15.
STAT = ("4242 (cartmq) x) S 1 4242 4242 0 -1 4194560 2000 0 0 0 1234 567 "
        "0 0 20 0 3 0 100 200000000 3000 18446744073709551615 1 1 0 0 0 "
        "0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n")

STATUS = """Name:\tcartmq-worker
State:\tS (sleeping)
Threads:\t3
voluntary_ctxt_switches:\t1500
nonvoluntary_ctxt_switches:\t42
"""

PROC_STAT = """cpu  100 10 50 800 20 0 5 15 7 0
cpu0 50 5 25 400 10 0 2 8 3 0
intr 1 2 3
"""

STRACE = """% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 40.00    0.004000           2      2000           poll
 30.00    0.003000           1      2000           getpid
 20.00    0.002000           4       500       100 recvfrom
 10.00    0.001000          10       100           epoll_wait
------ ----------- ----------- --------- --------- ----------------
100.00    0.010000           2      4600       100 total
"""


def test_stat_times_count_fields_from_the_last_parenthesis():
    assert procstat.parse_stat_times(STAT) == (1234, 567)


def test_switches_of_a_status_file():
    assert procstat.parse_switches(STATUS) == (1500, 42)
    assert procstat.parse_switches("Name:\tx\n") == (0, 0)


def test_cpu_line_and_shares():
    before = procstat.parse_cpu_line(PROC_STAT)
    assert before["idle"] == 800 and before["steal"] == 15
    after = dict(before, user=before["user"] + 50, idle=before["idle"] + 30,
                 iowait=before["iowait"] + 10, steal=before["steal"] + 10,
                 guest=before["guest"] + 40)
    idle, steal = procstat.machine_shares(before, after)
    #  guest is inside user: 100 ticks in all, 40 idle or iowait, 10 steal
    assert idle == pytest.approx(0.4)
    assert steal == pytest.approx(0.1)
    assert procstat.machine_shares(before, before) == (0.0, 0.0)
    with pytest.raises(ValueError):
        procstat.parse_cpu_line("intr 1 2\n")


def test_strace_summary_counts_calls_per_syscall():
    assert procstat.parse_strace_summary(STRACE) == {
        "poll": 2000, "getpid": 2000, "recvfrom": 500, "epoll_wait": 100}
    assert procstat.parse_strace_summary("") == {}


def test_sample_of_this_process_reads_proc():
    sample = procstat.sample_process(os.getpid())
    assert sample["user"] + sample["sys"] > 0
    assert sample["vcsw"] + sample["ivcsw"] > 0


def test_variant_specs():
    assert budget_table.parse_variant("ipc/2x64/16x32/unix") == {
        "variant": "ipc/2x64/16x32/unix", "transport": "ipc", "workers": 2,
        "credit": 64, "clients": 16, "window": 32, "redis": "unix"}
    assert budget_table.parse_variant("tcp/4x16/8x16")["redis"] == "tcp"
    for bad in ("udp/4x16/8x16", "tcp/4x16", "tcp/4/8x16", "tcp/0x16/8x16",
                "tcp/4x16/8x16/pipe", "tcp/4x16/8xA"):
        with pytest.raises(ValueError):
            budget_table.parse_variant(bad)
    assert [v["variant"] for v in budget_table.parse_variants(
        "tcp/4x16/8x16, ipc/1x128/8x16")] == ["tcp/4x16/8x16",
                                              "ipc/1x128/8x16"]
    for spec in budget_table.MATRIX:
        budget_table.parse_variant(spec)


def test_arguments_take_the_matrix_and_check_kinds():
    args = cart_budget.parse_args(["--matrix"])
    assert len(args.variant_list) == len(budget_table.MATRIX)
    assert args.variant_list[0]["variant"] == "tcp/4x16/8x16"
    args = cart_budget.parse_args(["--strace", "worker,broker"])
    assert args.kinds == ["worker", "broker"]
    for bad in (["--strace", "worker,nginx"], ["--variants", "tcp/4x16"]):
        with pytest.raises(SystemExit):
            cart_budget.parse_args(bad)


def use(user, system, voluntary, involuntary):
    return {"user": user, "sys": system, "vcsw": voluntary,
            "ivcsw": involuntary}


def test_per_request_figures_of_each_kind():
    before = use(1.0, 2.0, 100, 10)
    after = use(1.5, 2.25, 600, 60)
    assert budget_table.difference(before, after) == use(0.5, 0.25, 500, 50)
    kinds = budget_table.kind_figures({
        "broker": [use(0.5, 0.25, 500, 50)],
        "worker": [use(1.0, 1.0, 100, 0), use(3.0, 1.0, 300, 100)],
    }, 100000)
    assert kinds["broker"] == {"user_us": 5.0, "sys_us": 2.5, "vcsw": 0.005,
                               "ivcsw": 0.0005}
    assert "each" not in kinds["broker"]
    assert kinds["worker"]["user_us"] == pytest.approx(40.0)
    assert kinds["worker"]["sys_us"] == pytest.approx(20.0)
    assert kinds["worker"]["vcsw"] == pytest.approx(0.004)
    assert [each["user_us"] for each in kinds["worker"]["each"]] == \
        pytest.approx([10.0, 30.0])
    assert budget_table.total_us(kinds) == pytest.approx(67.5)
    #  no division by zero when nothing was answered
    assert budget_table.per_request(use(1, 0, 0, 0), 0)["user_us"] == 1e6


def test_ratio_and_rounding():
    assert budget_table.ratio(50000, 200000) == 0.25
    assert budget_table.ratio(None, 200000) is None
    assert budget_table.ratio(50000, None) is None
    assert budget_table.rounded({"a": [1.23456, {"b": 2.0004}], "c": 3},
                                2) == {"a": [1.23, {"b": 2.0}], "c": 3}


def row(variant, rps, kinds=None):
    kinds = kinds or {}
    return {"variant": variant, "rps": rps, "ratio": 0.25,
            "redis_p16_rps": 120000.4, "kinds": kinds,
            "total_us": budget_table.total_us(kinds),
            "redis_alone_us": 6.04, "idle_pct": 3.4}


def test_budget_table():
    figure = {"user_us": 10.04, "sys_us": 5.0, "vcsw": 0.5, "ivcsw": 0.125}
    kinds = {kind: figure for kind in budget_table.KINDS}
    text = budget_table.render_budget([
        row("tcp/4x16/8x16", 30000.4, kinds),
        dict(row("ipc/4x16/8x16", 31000, {"broker": figure}), ratio=None),
        row("tcp/1x128/8x16", None)])
    lines = text.splitlines()
    assert lines[0].startswith("| variant | req/s | Redis -P16 req/s | "
                               "ratio | "
                               "client µs user / sys | client cs vol / "
                               "invol | broker µs user / sys |")
    assert lines[0].endswith("| all µs | Redis alone µs/call | idle % |")
    columns = lines[0].count("|")
    assert all(line.count("|") == columns for line in lines)
    assert lines[2] == ("| tcp/4x16/8x16 | 30,000 | 120,000 | 0.250"
                        + " | 10.0 / 5.0 | 0.50 / 0.12" * 4
                        + " | 60.2 | 6.0 | 3 |")
    assert lines[3] == ("| ipc/4x16/8x16 | 31,000 | 120,000 | - | - | - "
                        "| 10.0 / 5.0 | 0.50 / 0.12 | - | - | - | - "
                        "| 15.0 | 6.0 | 3 |")
    assert lines[4].startswith("| tcp/1x128/8x16 | failed |")


def test_rounds_combine_into_one_row():
    rows = [dict(row("v", 3.0), ratio=0.3, redis_p16_rps=100.0, round=1),
            dict(row("v", None), ratio=None, redis_p16_rps=90.0, round=2),
            dict(row("v", 2.0), ratio=0.1, redis_p16_rps=200.0, round=3),
            dict(row("v", 5.0), ratio=0.2, redis_p16_rps=250.0, round=4)]
    #  req/s 0, 2, 3, 5: the lower median is round 3's row
    combined = budget_table.combine_rounds(rows)
    assert (combined["round"], combined["rps"]) == (3, 2.0)
    #  but the ratio and Redis's req/s are the medians over the rounds
    assert combined["ratio"] == 0.2
    assert combined["redis_p16_rps"] == 150.0
    assert budget_table.combine_rounds(rows[:1])["ratio"] == 0.3
    assert budget_table.combine_rounds(rows[1:2])["ratio"] is None
    assert budget_table.combine_rounds(rows + [dict(
        row("v", 1.0), ratio=0.5, redis_p16_rps=1.0, round=5)])["round"] == 3


def test_syscalls_table():
    worker = budget_table.syscalls_per_request(
        procstat.parse_strace_summary(STRACE), 1000)
    assert worker == {"poll": 2.0, "getpid": 2.0, "recvfrom": 0.5,
                      "epoll_wait": 0.1}
    broker = {"poll": 0.3, "sendto": 0.25, "clone": 0.001}
    assert budget_table.render_syscalls({"worker": worker,
                                         "broker": broker}) == (
        "| syscall | worker | broker |\n"
        "| --- | ---: | ---: |\n"
        "| poll | 2.00 | 0.30 |\n"
        "| getpid | 2.00 | 0.00 |\n"
        "| recvfrom | 0.50 | 0.00 |\n"
        "| sendto | 0.00 | 0.25 |\n"
        "| epoll_wait | 0.10 | 0.00 |\n"
        "| **all** | **4.60** | **0.55** |\n")
    assert "| other | 0.00 | 0.01 |" in budget_table.render_syscalls(
        {"worker": worker, "broker": dict(broker, clone=0.0054)})
