"""Every kind of cached or recorded file damaged: detected, named, and the rerun is identical."""
from __future__ import annotations

import json
import shutil

import pytest

from runners import evaluate
from tests.faults.common import tiny_cfg

pytestmark = pytest.mark.slow


def damage(path, how: str) -> None:
    data = path.read_bytes()
    if how == "flipped":
        path.write_bytes(data[:-3] + bytes([data[-3] ^ 0xFF]) + data[-2:])
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(b"")


def test_damaged_store_entries_are_re_encoded(tmp_path, reference, warm_cache, caplog):
    reference_run, _ = reference
    entries = sorted((warm_cache / "store").rglob("*.safetensors"))
    assert len(entries) == 4
    for entry, how in zip(entries, ("flipped", "truncated", "empty")):
        damage(entry, how)
    again = evaluate.run(tiny_cfg(warm_cache), out_dir=tmp_path / "run")
    assert again["encoded"] == 3 and again["reused"] == 1
    assert sum("is damaged" in r.getMessage() for r in caplog.records) == 3
    assert (tmp_path / "run" / "results.csv").read_bytes() == (reference_run / "results.csv").read_bytes()


@pytest.mark.parametrize("how", ["truncated", "empty"])
def test_a_damaged_run_json_is_named_and_overwrite_reruns_identically(tmp_path, reference, warm_cache, how):
    reference_run, _ = reference
    out = tmp_path / "run"
    shutil.copytree(reference_run, out)
    damage(out / "run.json", how)
    with pytest.raises(FileExistsError, match=f"{out / 'run.json'} (is empty|is not valid JSON).*overwrite=true"):
        evaluate.run(tiny_cfg(warm_cache), out_dir=out)
    assert (out / "results.csv").read_bytes() == (reference_run / "results.csv").read_bytes()  # untouched
    evaluate.run(tiny_cfg(warm_cache, "overwrite=true"), out_dir=out)
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    assert (out / "results.csv").read_bytes() == (reference_run / "results.csv").read_bytes()


def test_damaged_results_are_rewritten_by_the_same_command(tmp_path, reference, warm_cache):
    reference_run, _ = reference
    out = tmp_path / "run"
    shutil.copytree(reference_run, out)
    for name in ("results.parquet", "per_query.parquet", "results.csv"):
        damage(out / name, "truncated")
    evaluate.run(tiny_cfg(warm_cache), out_dir=out)
    for name in ("results.parquet", "per_query.parquet", "results.csv"):
        assert (out / name).read_bytes() == (reference_run / name).read_bytes(), name
