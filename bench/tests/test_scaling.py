"""Tests of bench/scaling.py's pure parts: how the clients curve splits
its window, the CPU arithmetic and the markdown of a curve.

    /usr/bin/python3 -m pytest -q -p no:cacheprovider bench/tests
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import scaling  # noqa: E402


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


def test_cpu_per_request_in_microseconds():
    assert scaling.cpu_us_per_request(100, 100, 1000000) == 1.0
    assert scaling.cpu_us_per_request(5, 100, 0) == 50000.0  # no division by 0


def test_ratio_is_largest_over_smallest():
    points = [{"size": 1, "us": 10.0}, {"size": 4, "us": 30.0},
              {"size": 16, "us": 12.0}]
    assert scaling.ratio(points) == 1.2
    assert scaling.ratio(points[:1]) is None
    assert scaling.ratio([{"size": 1, "us": 10.0},
                          {"size": 4, "rps": None}]) is None


def test_curve_renders_as_markdown():
    points = [
        {"size": 1, "rps": 30000.4, "us": 10.0, "sys_us": 4.0,
         "rss": 8 * 1048576},
        {"size": 1000, "rps": 29000, "us": 13.0, "sys_us": 5.5,
         "rss": 20.25 * 1048576},
    ]
    assert scaling.render_curve("services", "services", points) == (
        "#### services\n"
        "\n"
        "| services | req/s | broker µs CPU/request | of which system "
        "| broker RSS MiB |\n"
        "| ---: | ---: | ---: | ---: | ---: |\n"
        "| 1 | 30,000 | 10.00 | 4.00 | 8.0 |\n"
        "| 1,000 | 29,000 | 13.00 | 5.50 | 20.2 |\n"
        "\n"
        "CPU/request largest / smallest: **1.30×** (target ≤ 1.2×: missed)\n")
    within = [dict(points[0]), dict(points[1], us=11.0)]
    assert "**1.10×** (target ≤ 1.2×: met)" in scaling.render_curve(
        "t", "x", within)


def test_failed_point_renders_and_gives_no_ratio():
    points = [{"size": 1, "rps": None},
              {"size": 4, "rps": 1.0, "us": 1.0, "sys_us": 0.5, "rss": 0}]
    text = scaling.render_curve("t", "workers", points)
    assert "| 1 | failed | | | |" in text
    assert "largest / smallest: n/a" in text
