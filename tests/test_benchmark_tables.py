"""benchmarks/ablation.py's rule for "FD has stopped improving" and the tables that report it."""

from __future__ import annotations

from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture()
def ablation(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import ablation

    return ablation


def _curve(*values: float) -> dict[str, float]:
    return {str(1000 * (i + 1)): v for i, v in enumerate(values)}


def test_fd_gain_compares_the_last_window_with_the_one_before(ablation) -> None:
    # a run of the 2026-12-04 record: 17.0 22.0 | 20.8 10.8 at 5k-8k: still falling
    curve = _curve(34.7, 18.9, 19.0, 18.0, 17.0, 22.0, 20.8, 10.8)
    assert ablation.fd_gain(curve, 2) == pytest.approx((19.5 - 15.8) / 19.5)
    assert ablation.stopped_improving(curve, 2, 0.05) is False
    flat = _curve(20.3, 16.3, 17.7, 16.9, 10.0, 10.2, 10.0, 10.2)
    assert ablation.fd_gain(flat, 2) == pytest.approx(0.0)
    assert ablation.stopped_improving(flat, 2, 0.05) is True
    rising = _curve(9.0, 8.0, 10.0, 12.0)
    assert ablation.fd_gain(rising, 2) < 0
    assert ablation.stopped_improving(rising, 2, 0.05) is True
    assert ablation.fd_gain(_curve(3.0, 2.0, 1.0), 2) is None  # too short to say
    assert ablation.stopped_improving(_curve(3.0, 2.0, 1.0), 2, 0.05) is None


def test_the_order_is_by_step_not_by_key(ablation) -> None:
    # JSON keys are strings: "10000" sorts before "2000"
    curve = {"10000": 1.0, "2000": 9.0, "4000": 8.0, "8000": 2.0}
    assert ablation.fd_gain(curve, 2) == pytest.approx((8.5 - 1.5) / 8.5)


def _record(variant: str, seed: int, curve: dict[str, float]) -> dict[str, object]:
    metrics = {"constraint": 0.1, "wellformed": 0.5, "fd_random": 3.0}
    return {
        "data": "longrange",
        "variant": variant,
        "seed": seed,
        "steps": 4000,
        "scored_step": 4000,
        "metrics": metrics,
        "gammas": {},
        "curve": curve,
    }


def test_the_tables_count_and_show_the_runs_that_stopped(ablation) -> None:
    records = [
        _record("no-attention", 0, _curve(9.0, 8.0, 5.0, 4.0)),  # 8.5 -> 4.5: still falling
        _record("no-attention", 1, _curve(9.0, 5.0, 5.0, 5.0)),  # 7.0 -> 5.0: still falling
        _record("no-attention", 2, _curve(9.0, 5.0)),  # too short
        _record("sagan@16", 0, _curve(9.0, 5.0, 5.1, 4.9)),  # 7.0 -> 5.0 over 2; flat over 1
        _record("sagan@16", 1, _curve(5.3, 5.3, 5.0, 5.028)),  # 5.3 -> 5.014: 5.4%, improving
        _record("sagan@16", 2, _curve(5.3, 5.3, 5.0, 5.1)),  # 5.3 -> 5.05: 4.7%, stopped
    ]

    def summary_rows(window: int) -> dict[str, str]:
        text = ablation.table(records, ["no-attention", "sagan@16"], window=window, tol=0.05)
        summary = text.split("during training")[0]  # the curves' rows follow
        return {x.split(" | ")[0]: x for x in summary.splitlines() if x.startswith("| ")}

    rows = summary_rows(2)
    assert rows["| no-attention"].endswith("| 0 of 2 |")
    assert rows["| sagan@16"].endswith("| 1 of 3 |")
    rows = summary_rows(1)  # over one evaluation: 4.0 < 5.0 - 5%, 5.0 = 5.0, 5.0 < 9.0 - 5%
    assert rows["| no-attention"].endswith("| 1 of 3 |")
    assert rows["| sagan@16"].endswith("| 3 of 3 |")  # 4.9 is 3.9% below 5.1; 5.028, 5.1 rose
    runs = ablation.runs_table(records, window=2)
    rows = {tuple(x.split(" | ")[:2]): x for x in runs.split("during training")[0].splitlines()}
    assert rows[("| no-attention", "0")].endswith("| +47.1%, improving |")
    assert rows[("| no-attention", "1")].endswith("| +28.6%, improving |")
    assert rows[("| sagan@16", "1")].endswith("| +5.4%, improving |")  # not "+5%": read as stopped
    assert rows[("| sagan@16", "2")].endswith("| +4.7%, stopped |")
    assert rows[("| no-attention", "2")].endswith("| n/a |")  # too short to say


def test_a_failed_score_is_not_a_plateau(ablation) -> None:
    nan, inf = float("nan"), float("inf")
    assert ablation.fd_gain(_curve(9.0, nan, 5.0, 4.0), 2) is None
    assert ablation.fd_gain(_curve(inf, 9.0, 5.0, 4.0), 2) is None
    assert ablation.fd_gain(_curve(nan, 9.0, 8.0, 5.0, 4.0), 2) == pytest.approx(0.47058, 1e-4)
    assert ablation.fd_gain(_curve(0.0, 0.0, 0.0, 0.0), 2) is None
    assert ablation.stopped_improving(_curve(9.0, nan, 5.0, 4.0), 2, 0.05) is None
