"""Tests of bench/scaling.py's pure parts: how the clients curve splits
its window, the CPU arithmetic (per request, above idle), the fixed rate
and the markdown of a curve (scaling_report.py), and the scaling block of
--write-docs.

    /usr/bin/python3 -m pytest -q -p no:cacheprovider bench/tests
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import report  # noqa: E402
import scaling  # noqa: E402
import scaling_report  # noqa: E402


def test_split_keeps_the_total_window():
    assert scaling.split_clients(8) == (8, 16, 0)
    assert scaling.split_clients(100) == (64, 2, 36)
    assert scaling.split_clients(1000) == (128, 1, 872)
    assert scaling.split_clients(5000) == (128, 1, 4872)
    assert scaling.split_clients(1) == (1, 128, 0)
    for clients in (1, 3, 8, 100, 127, 128, 129, 5000):
        active, window, idle = scaling.split_clients(clients)
        assert active * window == scaling.IN_FLIGHT
        assert active + idle == clients


def test_split_of_a_total_that_is_not_a_power_of_two():
    assert scaling.split_clients(7, in_flight=12) == (6, 2, 1)


def test_proc_texts_are_read():
    #  A command name with ") " in it must not shift the fields.
    stat = "42 (a) b) S " + " ".join(str(n) for n in range(4, 53))
    assert scaling.parse_stat_times(stat) == (14, 15)   # fields 14 and 15
    assert scaling.parse_schedstat("2726182 697691 2\n") == 2726182


def sample(ns, user, system, wall_s):
    return {"ns": ns, "user": user, "system": system, "wall_s": wall_s}


def test_cpu_per_request_and_above_idle():
    #  2 s busy: 30 ms of CPU for 1,000 requests; idle: 5 ms per second.
    busy = sample(30e6, 2, 1, 2.0)
    idle = sample(10e6, 1, 0, 2.0)
    run = scaling.per_request(busy, idle, 1000)
    assert run["us"] == 30.0
    assert run["above_us"] == 20.0
    assert run["sys_us"] == 10.0         # a third of the ticks were system
    #  An idle window of another length is taken per second.
    assert scaling.per_request(busy, sample(5e6, 0, 0, 0.5), 1000)[
        "above_us"] == 10.0
    #  No ticks, no idle, no request: no division by 0.
    run = scaling.per_request(sample(1e6, 0, 0, 1.0), None, 0)
    assert run == {"us": 1000.0, "above_us": 1000.0, "sys_us": 0.0}


def test_median_run_of_the_rounds():
    runs = [{"rps": 10.0, "us": 3.0, "above_us": 2.0, "sys_us": 1.0,
             "bad": 1, "late": 2, "skipped": 0},
            None,
            {"rps": 30.0, "us": 1.0, "above_us": 4.0, "sys_us": 3.0,
             "bad": 0, "late": 1, "skipped": 5}]
    assert scaling.median_run(runs) == {
        "rps": 20.0, "us": 2.0, "above_us": 3.0, "sys_us": 2.0, "bad": 1,
        "late": 3, "skipped": 5}
    assert scaling.median_run([None, None]) is None


def point(size, rps, us, above, fixed_rps=1000.0, fixed_us=None,
          fixed_above=None):
    return {"size": size, "idle_pct": 0.5, "rss": 8 * 1048576,
            "saturated": {"rps": rps, "us": us, "above_us": above,
                          "sys_us": us / 2},
            "fixed": {"rps": fixed_rps, "us": fixed_us or us,
                      "above_us": fixed_above or above,
                      "sys_us": (fixed_us or us) / 2}}


def test_ratio_is_largest_over_smallest_per_mode_and_field():
    points = [point(1, 100, 10.0, 8.0, fixed_us=20.0),
              point(4, 100, 30.0, 8.0),
              point(16, 100, 12.0, 4.0, fixed_us=22.0)]
    ratio = scaling_report.ratio
    assert ratio(points, "saturated") == 1.2
    assert ratio(points, "saturated", "above_us") == 0.5
    assert ratio(points, "fixed") == 1.1
    assert ratio(points[:1], "saturated") is None
    assert ratio([points[0], dict(points[1], fixed=None)], "fixed") is None
    #  Above idle may come out at 0 or below: no ratio over it.
    zero = point(1, 100, 10.0, 0.0)
    assert ratio([zero, points[1]], "saturated", "above_us") is None


def test_rate_selection():
    assert scaling_report.sustained(1000, 960.0)
    assert not scaling_report.sustained(1000, 940.0)
    assert not scaling_report.sustained(1000, None)
    #  60 % of the slowest saturated point, down to a multiple of 100.
    assert scaling_report.sustainable_rate([40000, 1628, None, 8000]) == 900
    assert scaling_report.sustainable_rate([120]) == 100
    assert scaling_report.sustainable_rate([None]) is None


def test_curve_renders_as_markdown():
    points = [point(1, 30000.4, 10.0, 9.5, fixed_us=20.0, fixed_above=12.0),
              point(1000, 29000, 13.0, 12.0, fixed_rps=990.0, fixed_us=21.0,
                    fixed_above=12.6)]
    points[1]["rss"] = 20.25 * 1048576
    assert scaling_report.render_curve("services", "services", points,
                                       1000) == (
        "### services\n"
        "\n"
        "| services | req/s | µs/req | above idle | system | req/s at 1,000 "
        "req/s | µs/req | above idle | system | idle CPU % | RSS MiB |\n"
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: |\n"
        "| 1 | 30,000 | 10.00 | 9.50 | 5.00 | 1,000 | 20.00 | 12.00 | 10.00 "
        "| 0.50 | 8.0 |\n"
        "| 1,000 | 29,000 | 13.00 | 12.00 | 6.50 | 990 | 21.00 | 12.60 "
        "| 10.50 | 0.50 | 20.2 |\n"
        "\n"
        "CPU/request largest / smallest (target ≤ 1.2×): saturated: "
        "**1.30×** missed, above idle **1.26×** missed; at 1,000 req/s: "
        "**1.05×** met, above idle **1.05×** met.\n")


def test_a_point_below_the_rate_is_marked():
    points = [point(1, 3000, 10.0, 9.0),
              point(100, 1200, 12.0, 11.0, fixed_rps=700.0)]
    text = scaling_report.render_curve("t", "x", points, 1000)
    assert "| 700 * |" in text
    assert "below 95 % of the 1,000 req/s offered" in text
    assert "700 *" not in scaling_report.render_curve(
        "t", "x", [point(1, 3000, 10.0, 9.0)] * 2, 1000)


def test_failed_point_and_no_fixed_rate():
    points = [{"size": 1, "idle_pct": None, "rss": None, "saturated": None,
               "fixed": None},
              point(4, 1.0, 1.0, 0.5)]
    text = scaling_report.render_curve("t", "workers", points, 0)
    assert "| 1 | failed | | | | - | - | - | - | | |" in text
    assert "| 4 | 1 | 1.00 | 0.50 | 0.50 | - | - | - | - | 0.50 | 8.0 |" \
        in text
    assert "(target ≤ 1.2×): saturated: n/a, above idle n/a." in text


def test_suggestion_names_the_slowest_point_and_the_misses():
    curves = [[point(1, 40000, 1, 1), point(2, 1628, 1, 1)],
              [point(1, 8000, 1, 1, fixed_rps=500.0)]]
    line = scaling_report.suggestion(curves, 1000)
    assert "Slowest saturated point: 1,628 req/s" in line
    assert "about 900 (`--rate 900`)" in line
    assert "1 point did not keep up with 1,000 req/s." in line
    assert "did not keep up" not in scaling_report.suggestion(curves[:1],
                                                             1000)


def test_quick_options_and_sizes():
    args = scaling.options("build", quick=True, rate=500)
    assert (args.rounds, args.duration, args.rate) == (1, 2, 500)
    assert args.curves.split(",") == ["workers", "services", "clients",
                                      "idle", "queued"]
    assert (scaling.options("b").rounds, scaling.options("b").rate) == (
        3, scaling.DEFAULT_RATE)
    for key, sizes in scaling.QUICK_SIZES.items():
        assert set(sizes) <= set(scaling.SIZES[key])


def test_write_docs_replaces_only_the_scaling_block(tmp_path, monkeypatch):
    docs = tmp_path / "benchmarks.md"
    begin, end = report.SCALING_MARKERS
    docs.write_text("# B\n%s\nold results\n%s\n## Scaling\n%s\nold curves\n"
                    "%s\n## After\n" % (report.BEGIN, report.END, begin, end))
    monkeypatch.setattr(report, "DOCS", str(docs))
    report.write_docs("new curves", "bench/run.py --scaling",
                      report.SCALING_MARKERS)
    text = docs.read_text()
    assert "old results" in text and "old curves" not in text
    assert "%s\n\nCommand: `bench/run.py --scaling`\n\nnew curves\n\n%s\n" \
        "## After\n" % (begin, end) in text


def test_preamble_says_how_the_points_ran():
    text = scaling_report.preamble(3, 3, 1000, 612.4, 2)
    assert text.endswith(
        "a 1 s warmup run per point, then 3 rounds of idle CPU over 3 s, a "
        "saturated run and a fixed-rate run (1,000 req/s), each of 3 s after "
        "its own 2 s of warmup, which its CPU leaves out; 612 s in all.\n")
    assert "fixed-rate run (off)" in scaling_report.preamble(1, 2, 0, 1, 2)
