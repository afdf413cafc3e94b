"""The estimate's fit on timings whose law is known: the terms the jobs tell apart are found
(a batch that costs less than its pictures because a step's cost does not grow with it),
the terms they cannot tell apart are left out, and nothing comes out below zero."""

from __future__ import annotations

import pytest

from sfumato.jobs.estimates import estimate_from, fit
from sfumato.store.tables import Job


def _job(steps: int, size: int = 512, batch: int = 1, law=lambda w, s, p: 0.0) -> Job:
    settings = {"steps": steps, "width": size, "height": size, "batch_size": batch}
    work = size * size * steps * batch / 1e6
    engine = law(work, steps, batch)
    return Job(model_name="m", settings=settings, timings={"engine_s": engine, "load_s": 0.0,
               "save_s": 0.01 * batch})  # fmt: skip


def test_a_steps_cost_is_told_from_the_compute_and_a_batch_is_not_four_pictures():
    def law(work, steps, pictures):  # a GPU: a step costs much whatever the batch
        return 0.05 * work + 0.2 * steps + 0.3 * pictures

    seen = [
        _job(10, law=law),
        _job(20, law=law),
        _job(10, 768, law=law),
        _job(10, batch=2, law=law),
    ]
    rates = fit(seen)
    assert rates.per_work == pytest.approx(0.05) and rates.per_step == pytest.approx(0.2)
    assert rates.per_picture == pytest.approx(0.3)
    batch = estimate_from(seen, "m", _job(25, batch=4).settings, warm=True)
    assert batch.seconds == pytest.approx(law(25 * 4 * 0.262144, 25, 4) + 0.04, abs=0.02)


def test_jobs_of_one_size_and_one_batch_give_all_of_it_to_the_compute():
    def law(work, steps, pictures):
        return 0.1 * work + 0.5 * pictures

    seen = [_job(8, law=law), _job(16, law=law), _job(32, law=law)]
    rates = fit(seen)  # steps and compute move together here: not told apart
    assert rates.per_work > 0 and rates.per_step == 0
    assert min(rates.per_work, rates.per_step, rates.per_picture) >= 0
    # within the jobs' range, right all the same
    assert estimate_from(seen, "m", _job(24).settings, True).seconds == pytest.approx(
        law(24 * 0.262144, 24, 1) + 0.01, rel=0.05
    )
