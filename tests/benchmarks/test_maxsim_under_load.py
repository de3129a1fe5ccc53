"""benchmarks.maxsim_vs_pylate --under-load at a tiny size: both speeds, idle and loaded, in one run."""
from __future__ import annotations

import pytest

from benchmarks import maxsim_vs_pylate


@pytest.mark.slow
def test_under_load_reports_idle_and_loaded_speeds_of_maxsim_and_matmul(tmp_path):
    report = maxsim_vs_pylate.main(["--under-load", "--queries", "3", "--documents", "40", "--k", "5",
                                    "--repeats", "1", "--matmul-size", "128", "--out", str(tmp_path / "r.json")])
    assert report["load_processes"] == 1
    for name in ("maxsim", "matmul"):
        side = report[name]
        assert len(side["idle_seconds"]) == len(side["loaded_seconds"]) == 1
        assert side["idle_gflops_per_s"] > 0 and side["loaded_gflops_per_s"] > 0
        assert side["kept_fraction"] == pytest.approx(side["idle_seconds"][0] / side["loaded_seconds"][0])
    # The matmul does the same work as MaxSim, to within one matmul call.
    assert abs(report["matmul"]["flops"] - report["maxsim"]["flops"]) <= 2 * 128**3
    assert (tmp_path / "r.json").is_file()


def test_under_load_rejects_no_competitors():
    with pytest.raises(SystemExit):
        maxsim_vs_pylate.main(["--under-load", "--load-processes", "0"])
