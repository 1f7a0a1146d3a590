"""The benchmark's pure parts: statistics, the interleaved order, the hub-metrics step report,
the results document's required keys and the prose computed from its numbers."""

from __future__ import annotations

import gzip
import json
import math

import pytest

from benchmarks import report
from benchmarks.stacks import keep_log
from benchmarks.stats import interleaved_order, pct, ratio, summary
from benchmarks.steps import NOT_MEASURED, difference, parse_histograms, step_report


def test_pct_and_summary():
    assert pct([1, 2, 3, 4, 5], 0.5) == 3
    assert pct([1, 2], 0.95) == pytest.approx(1.95)
    assert math.isnan(pct([], 0.5))
    s = summary([3.0, 1.0, 2.0, float("nan")])
    assert (s["median_s"], s["min_s"], s["max_s"], s["runs"]) == (2.0, 1.0, 3.0, 3)
    assert summary([])["runs"] == 0


def test_ratio():
    assert ratio(2.0, 1.0) == 2.0
    assert math.isnan(ratio(float("nan"), 1.0))
    assert math.isnan(ratio(1.0, 0.0))


def test_interleaved_order_alternates_who_goes_first():
    order = interleaved_order(["stock", "mlhub"], 4, seed=None)
    assert order == ["stock", "mlhub", "mlhub", "stock"] * 2
    shuffled = interleaved_order(["stock", "mlhub"], 50, seed=7)
    firsts = {shuffled[i] for i in range(0, 100, 2)}
    assert firsts == {"stock", "mlhub"} and shuffled.count("stock") == 50
    assert shuffled == interleaved_order(["stock", "mlhub"], 50, seed=7)


METRICS = """
# HELP mlhub_spawn_step_seconds time per step
# TYPE mlhub_spawn_step_seconds histogram
mlhub_spawn_step_seconds_bucket{le="0.1",step="network"} 1.0
mlhub_spawn_step_seconds_count{step="network"} 2.0
mlhub_spawn_step_seconds_sum{step="network"} 0.5
mlhub_spawn_step_seconds_count{step="create"} 4.0
mlhub_spawn_step_seconds_sum{step="create"} 2.0
jupyterhub_server_spawn_duration_seconds_count{status="success"} 4.0
jupyterhub_server_spawn_duration_seconds_sum{status="success"} 8.0
"""


def test_step_report_reads_histograms_and_says_not_measured():
    hist = parse_histograms(METRICS)
    assert hist["mlhub_spawn_step_seconds"]["step=network"] == {"count": 2.0, "sum": 0.5}
    steps = step_report(hist)
    assert steps["mlhub_spawn_step_seconds"]["create"] == {"count": 4, "mean_s": 0.5}
    assert steps["jupyterhub_server_spawn_duration_seconds"]["success"]["mean_s"] == 2.0
    assert steps["mlhub_stop_step_seconds"] == NOT_MEASURED
    assert step_report(None)["mlhub_spawn_step_seconds"] == NOT_MEASURED


def test_difference_between_scrapes_and_after_a_restart():
    before = parse_histograms(METRICS)
    after = parse_histograms(METRICS.replace('count{step="create"} 4.0', 'count{step="create"} 6.0'))
    assert difference(after, before)["mlhub_spawn_step_seconds"]["step=create"]["count"] == 2.0
    reset = parse_histograms('mlhub_spawn_step_seconds_count{step="create"} 1.0\n')
    assert difference(reset, before)["mlhub_spawn_step_seconds"]["step=create"]["count"] == 1.0


def measured(stock: float, mlhub: float, errors: int = 0) -> dict:
    doc = report.skeleton()
    doc["interleaved"] = True
    doc["config_parity"]["http_timeout_equal"] = True
    doc["floor"] = summary([1.0, 1.1, 0.9])
    doc["single_spawn"] = {"stock": summary([stock] * 5), "mlhub": summary([mlhub] * 5)}
    for n in report.CONCURRENCY:
        doc["concurrent"][n] = {
            "stock": {"all_ready_s": stock * int(n), "errors": 0},
            "mlhub": {"all_ready_s": mlhub * int(n), "errors": errors},
        }
    doc["failures"] = [
        {"stack": "mlhub", "scenario": "concurrent-10", "user": f"u{i}", "cause": "Timeout"}
        for i in range(errors)
    ]
    doc["hub_restart"] = {
        s: {"seconds_to_all_routes": 4.0, "disturbed": 0, "servers": 100} for s in ("stock", "mlhub")
    }
    doc["cleanup"] = {"objects": 10_000, "seconds": 20.0, "removed": 5000, "spawn_slowdown": 0.05}
    return doc


def test_skeleton_has_every_required_key_and_json_has_no_nan():
    doc = report.skeleton()
    assert report.missing_keys(doc) == []
    del doc["cleanup"]["seconds"]
    assert report.missing_keys(doc) == ["cleanup.seconds"]
    text = json.dumps(report.jsonable({"a": float("nan"), "b": [float("inf"), 1.0]}), allow_nan=False)
    assert json.loads(text) == {"a": None, "b": [None, 1.0]}


def test_prose_is_computed_from_the_numbers():
    fast = measured(stock=2.0, mlhub=1.5)
    assert all(t["met"] for t in report.targets(fast))
    assert report.prose(fast) == []
    slow = measured(stock=2.0, mlhub=3.0, errors=2)
    lines = report.prose(slow)
    text = "\n".join(lines)
    assert "median 2.00 s stock / 3.00 s MLHub" in text
    assert "stock spent +1.00 s above it, MLHub +2.00 s" in text  # floor 1.0 s
    assert "1.50× stock's time" in text and "2× Timeout" in text
    assert "MLHub's steps: not measured" in text
    slow["steps"] = {"mlhub": step_report(parse_histograms(METRICS))}
    assert "create 0.50 s, network 0.25 s" in "\n".join(report.prose(slow))


def test_unmeasured_targets_say_so_and_the_markdown_renders():
    doc = report.skeleton()
    assert all(t["met"] is None for t in report.targets(doc))
    assert all("not measured" in line for line in report.prose(doc))
    text = report.markdown(measured(2.0, 3.0, errors=1), "2026-01-01")
    assert "| one spawn, median of 5 | 2 | 3 | 0.67× | s |" in text
    assert "mlhub concurrent-10 u0: Timeout" in text


def test_no_arguments_is_the_full_protocol_and_smaller_runs_are_smoke():
    from benchmarks.bench import is_full, parse_args

    full = parse_args([])
    assert is_full(full) and full.ns == [10, 20, 50, 100, 200] and full.reps >= 5 and full.runs >= 3
    assert (full.restart_servers, full.cleanup_objects) == (100, 10_000)
    assert not is_full(parse_args(["--smoke"]))
    assert not is_full(parse_args(["--concurrency", "10,20"]))
    assert not is_full(parse_args(["--skip", "restart"]))
    with pytest.raises(SystemExit):
        parse_args(["--skip", "everything"])


def test_soak_counts_the_cleanup_services_removals_and_splits_latency_in_thirds():
    from benchmarks.soak import CLEANUP_REMOVAL, latency_by_third

    log = "\n".join(
        [
            "[I 2026-11-30 19:21:30,333 cleanup-service] Cleanup service for hub mlts44cb (install c2)",
            "[I 2026-11-30 19:26:30,100 cleanup-service] Removed volume mlts-x-workspace of soak01 (its account is gone)",
            "[I 2026-11-30 19:26:30,200 cleanup-service] Deleted server soak02/a (container gone)",
            "[I 2026-11-30 19:26:30,300 cleanup-service] Cleanup users for hub mlts: removed 2, kept 3, errors 0",
            "[I 2026-11-30 19:26:31.000 JupyterHub docker:820] Removed network mlts-soak00: soak00 has no workspace left",
        ]
    )
    assert len(CLEANUP_REMOVAL.findall(log)) == 2
    rows = latency_by_third([(0, 1.0), (10, 2.0), (50, 3.0), (90, 4.0)], minutes=1.5)
    assert rows[0].startswith("| first third | 2 | 1.50 s")
    assert rows[1].startswith("| middle third | 1 | 3.00 s") and rows[2].startswith(
        "| last third | 1 | 4.00 s"
    )


def test_both_configs_let_the_benchmarks_timeouts_win(tmp_path):
    from benchmarks.stacks import MLHUB_CONFIG, STOCK_CONFIG, overrides_win

    assert overrides_win(STOCK_CONFIG) and overrides_win(MLHUB_CONFIG)
    late = tmp_path / "late.py"
    late.write_text('load_subconfig("x")\nc.Spawner.http_timeout = 30\n')
    assert not overrides_win(late)
    never = tmp_path / "never.py"
    never.write_text("c.Spawner.http_timeout = 60\n")
    assert not overrides_win(never)


def test_a_cleanup_miss_is_set_against_the_engines_own_floor():
    doc = measured(stock=2.0, mlhub=1.5)
    doc["cleanup"].update(seconds=80.0, engine_floor_seconds=70.0)
    text = "\n".join(report.prose(doc))
    assert "5000 removed at 16.0 ms each" in text
    assert "removed objects like these in 70.0 s (floor), so the run was 10.0 s above it" in text
    assert "below this engine's floor" in text
    assert "| floor: the engine removes objects like the orphans directly" in report.markdown(doc, "test")


def test_a_run_never_takes_another_runs_name(tmp_path):
    from benchmarks.bench import new_stamp

    assert new_stamp(tmp_path, "2026-12-01", full=False) == "2026-12-01-smoke"
    (tmp_path / "2026-12-01-smoke.json").write_text("{}")
    (tmp_path / "2026-12-01-smoke-2-logs").mkdir()
    assert new_stamp(tmp_path, "2026-12-01", full=False) == "2026-12-01-smoke-3"
    assert new_stamp(tmp_path, "2026-12-01", full=True) == "2026-12-01"


def test_a_full_run_refuses_a_changed_tree_and_every_report_names_its_code():
    from benchmarks.bench import changed_code_refusal, changed_files

    assert changed_files(" M CHANGELOG.md\nM  mlhub/x.py\n") == ["CHANGELOG.md", "mlhub/x.py"]

    clean = {"commit": "ad1b05b1a2b3", "changed_files": []}
    changed = {"commit": "ad1b05b1a2b3", "changed_files": ["mlhub/spawners/docker.py"]}
    assert changed_code_refusal(clean, full=True) == ""
    assert changed_code_refusal(changed, full=False) == ""  # a partial run records them
    assert "mlhub/spawners/docker.py" in changed_code_refusal(changed, full=True)
    assert report._code_line(clean) == "Code: commit `ad1b05b1a2b3`, the working tree as committed."
    assert "uncommitted changes to `mlhub/spawners/docker.py`" in report._code_line(changed)
    assert "not recorded" in report._code_line(None)


def test_a_kept_hub_log_is_gzipped_next_to_the_results(tmp_path):
    path = keep_log(tmp_path / "2026-12-01-logs", "mlhub", "[I line one]\n[W line two]\n")
    assert path == tmp_path / "2026-12-01-logs" / "mlhub.log.gz"
    with gzip.open(path, "rt", encoding="utf-8") as kept:
        assert kept.read() == "[I line one]\n[W line two]\n"


def test_a_concurrent_miss_says_whether_it_is_within_the_spread_and_how_busy_both_stacks_were():
    doc = measured(stock=5.0, mlhub=5.3)
    row = doc["concurrent"]["10"]
    row["stock"].update(all_ready=summary([50.1, 50.1, 57.2]), machine_busy=0.92)
    row["mlhub"].update(all_ready=summary([53.8, 55.4, 49.0]), machine_busy=0.94)
    text = "\n".join(report.prose(doc))
    assert (
        "ranges overlap (stock 50.1–57.2 s, MLHub 49.0–55.4 s): the difference is within this run's spread"
        in text
    )
    assert (
        "94% busy while MLHub's servers started and 92% while stock's did (both at least 90 %: the cores were nearly saturated"
        in text
    )
    row["mlhub"].update(all_ready=summary([60.0, 61.0, 62.0]), machine_busy=0.5)
    text = "\n".join(report.prose(doc))
    assert "ranges do not overlap (stock 50.1–57.2 s, MLHub 60.0–62.0 s)" in text
    assert "50% busy while MLHub's servers started and 92% while stock's did." in text


def test_steps_are_reported_per_scenario_and_a_miss_names_its_own_scenarios_steps():
    doc = measured(stock=2.0, mlhub=3.0)
    single = step_report(parse_histograms(METRICS))
    crowded = step_report(
        parse_histograms(METRICS.replace('sum{step="network"} 0.5', 'sum{step="network"} 20.0'))
    )
    stock = step_report(
        parse_histograms(
            'jupyterhub_server_spawn_duration_seconds_count{status="success"} 2.0\n'
            'jupyterhub_server_spawn_duration_seconds_sum{status="success"} 3.0\n'
        )
    )
    doc["steps_by_scenario"] = {
        "single": {"stock": stock, "mlhub": single},
        "concurrent-10": {"stock": stock, "mlhub": crowded},
    }
    text = "\n".join(report.prose(doc))
    assert "MLHub's slowest steps (mean): create 0.50 s, network 0.25 s" in text
    assert "MLHub's slowest steps at 10 (mean): network 10.00 s, create 0.50 s" in text
    table = report.markdown(doc, "2026-01-01")
    assert "| step | single | concurrent-10 |" in table
    assert "| MLHub: network | 0.250 | 10.000 |" in table
    assert (
        "| stock: whole spawn (JupyterHub's `jupyterhub_server_spawn_duration_seconds`) | 1.500 | 1.500 |"
        in table
    )


def test_the_one_container_install_has_its_own_table_against_the_hub_on_the_host():
    doc = measured(stock=2.0, mlhub=1.5)
    doc["one_container"] = {
        "first_spawn_s": 4.2,
        "single_spawn": summary([2.5] * 5),
        "host_single_spawn": summary([1.5] * 5),
        "concurrent": {
            "10": {
                "container": {"all_ready_s": 12.0, "errors": 0},
                "host": {"all_ready_s": 10.0, "errors": 0},
            }
        },
    }
    text = report.markdown(doc, "2026-01-01")
    assert "| scenario | hub on the host | hub in one container | unit | note |" in text
    assert "| one spawn (median) | 1.5 | 2.5 | s |" in text
    assert "| 10 concurrent: all ready (median) | 10 | 12 | s | errors 0 / 0 |" in text
    assert "'stock' column" not in text


def test_a_concurrent_miss_is_set_against_what_its_networks_cost_the_engine_alone():
    doc = measured(stock=5.0, mlhub=5.3)
    doc["concurrent"]["50"]["network_floor"] = {
        "networks": 50,
        "create_s": 2.4,
        "create_cpu_s": 4.6,
        "remove_s": 2.1,
        "remove_cpu_s": 4.0,
    }
    text = "\n".join(report.prose(doc))
    assert (
        "Creating 50 bridge networks like MLHub's per-user ones (stock's servers share one) with docker-py alone"
        " took 2.4 s, in which the machine spent 4.6 s of CPU, in this run, against MLHub's extra 15.0 s."
        in text
    )
    table = report.markdown(doc, "2026-01-01")
    assert (
        "| 50 concurrent: docker-py alone creates 50 per-user networks | — | 2.4 | n/a | s | the machine's CPU meanwhile 4.6 s;"
        in table
    )
