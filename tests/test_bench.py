"""Smoke test of the benchmark: a --quick run completes and records every figure.
No timing thresholds here; the benchmark itself reports against its targets."""

import json
import subprocess
import sys

from conftest import ROOT

FIGURES = {
    "latency": ["direct_median_us", "direct_p99_us", "brokered_median_us", "brokered_p99_us",
                "ratio_median", "ratio_p99"],
    "broker_cost": ["msgqueue_requests_per_s", "reference_requests_per_s", "requests_ratio",
                    "msgqueue_cpu_us_per_request", "reference_cpu_us_per_request", "cpu_ratio"],
    "stall": ["timeout_s", "normal_round_trip_s", "worst_extra_latency_s", "over_timeout_s",
              "requests_resent", "requests_held_by_the_killed_server"],
    "client_overhead": ["c.py_us_per_request", "minimal_us_per_request", "ratio", "cpu_ratio"],
    "secret_cost": ["plain_requests_per_s", "secret_requests_per_s", "requests_ratio",
                    "plain_median_us", "secret_median_us", "plain_p99_us", "secret_p99_us",
                    "round_trip_ratio"],
}  # fmt: skip
NO_SLOWER = ["script_replies_per_s", "bare_replies_per_s", "ratio", "script_cpu_us_per_request",
             "bare_cpu_us_per_request"]  # fmt: skip


def test_quick_benchmark_records_every_figure(tmp_path):
    out = tmp_path / "results.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--json", str(out),
         "--png", str(tmp_path / "scaling.png")],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads(out.read_text())
    for section, names in FIGURES.items():
        for name in names:
            assert isinstance(results[section][name], (int, float)), (section, name)
    for section, name in [
        ("latency", "direct_median_us"),
        ("latency", "brokered_median_us"),
        ("broker_cost", "msgqueue_requests_per_s"),
        ("broker_cost", "msgqueue_cpu_us_per_request"),
    ]:
        assert results[section][name] > 0, (section, name)  # something was measured
    points = results["scaling"]["points"]
    assert [p["servers"] for p in points] == [1, 2, 4, 8]
    assert all(p["requests_per_s"] > 0 and p["efficiency"] > 0 for p in points)
    assert set(results["targets_met"]) == {"latency_ratio", "broker_cpu_ratio",
                                           "efficiency_at_8", "stall", "client_overhead",
                                           "storm_all_answered", "silent_faults",
                                           "servers_no_slower", "secret_cost"}  # fmt: skip
    slow = results["slow_server"]
    assert slow["all_fast"]["replies_per_s"] > 0 and slow["one_slow"]["replies_per_s"] > 0
    faults = results["silent_faults"]
    assert [f["victim"] for f in faults] == ["server", "broker"]
    assert all(f["replies_per_s_before"] > 0 for f in faults)
    (held,) = results["connections"]["points"]
    assert held["storm_answered"] == held["clients"] == 200  # every client of the storm
    assert held["replies_per_s"] > 0 and held["broker_rss_mb"] > 0
    stall = results["stall"]
    assert stall["requests_resent"] >= stall["requests_held_by_the_killed_server"]
    # Each server against its bare loop, quiet and printing (the benchmark itself checks
    # that the bare loop printed the very lines the script printed).
    cases = results["no_slower"]["cases"]
    assert [(c["script"], c["printing"]) for c in cases] == [
        ("rep.py", False), ("rep.py", True), ("mrep.py", False), ("mrep.py", True),
    ]  # fmt: skip
    for case in cases:
        for name in NO_SLOWER:
            assert isinstance(case[name], (int, float)), (case, name)
        assert case["script_replies_per_s"] > 0 and case["bare_replies_per_s"] > 0, case
    # --secret against none, in alternating rounds (--quick: 2 each), through real
    # brokers and servers: every round answered (the CURVE clients' keys fit).
    secret = results["secret_cost"]
    assert [r["secret"] for r in secret["per_round"]] == [False, True, False, True]
    for round_ in secret["per_round"]:
        assert round_["requests_per_s"] > 0 and round_["median_us"] > 0, round_
    assert "fail-over" in run.stdout  # the table was printed
    assert "bare loop, printing" in run.stdout
    assert "without / with --secret" in run.stdout
