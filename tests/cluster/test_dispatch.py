"""How jobs are handed to workers, on each database: the fair order with jobs already
handed out, a gone worker's jobs queued again, model affinity, and the rule that only the
run that owns a job may end it (so a job run twice never writes two sets of pictures)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from sfumato.cluster import registry
from sfumato.cluster.dispatch import choose_worker, pair_up
from sfumato.jobs.queue import (
    QUEUED,
    RUNNING,
    Superseded,
    enqueue,
    fair_order,
    finish,
    own,
    queue_positions,
    succeed,
)
from sfumato.store.tables import Job, User, Worker, utcnow


def _user(db, name):
    with db.session() as session:
        user = User(username=name, username_key=name, password_hash="x", preferences={})
        session.add(user)
        session.flush()
        return user.id


def _queue(db, user_id, count=1, model="a"):
    ids = []
    for _ in range(count):
        with db.session() as session:
            job = Job(user_id=user_id, model_name=model, model_path=f"/m/{model}.safetensors",
                      settings={}, total=4)  # fmt: skip
            ids.append(enqueue(session, job, limit=100).id)
    return ids


def _worker(db, name, models=(), beat_ago_s=0.0):
    with db.session() as session:
        registry.register(session, name, "host", 1, "cpu", f"q.{name}")
        session.execute(
            update(Worker)
            .where(Worker.name == name)
            .values(models=list(models), heartbeat_at=utcnow() - timedelta(seconds=beat_ago_s))
        )


def _hand(db, job_id, worker, ago_s=0.0, start=False):
    with db.session() as session:
        job = session.get(Job, job_id)
        job.worker, job.attempts = worker, job.attempts + 1
        job.dispatched_at = utcnow() - timedelta(seconds=ago_s)
        if start:
            job.status, job.started_at = RUNNING, utcnow()
        session.execute(update(Worker).where(Worker.name == worker).values(job_id=job_id))
        session.flush()
        session.expunge(job)
        return job


def test_jobs_handed_out_come_first_and_count_as_their_users_turn(db):
    ann, bob = _user(db, "ann"), _user(db, "bob")
    ann_jobs = _queue(db, ann, 3)
    (bob_job,) = _queue(db, bob)
    _hand(db, ann_jobs[0], "w1")
    with db.session() as session:
        waiting = [job.id for job in fair_order(session, handed=False)]
        positions = queue_positions(session)
    # ann was just served (her first job is on its way): bob's one job is next, not hers
    assert waiting == [bob_job, ann_jobs[1], ann_jobs[2]]
    assert positions[ann_jobs[0]] == 1 and positions[bob_job] == 2


def test_a_silent_workers_jobs_go_back_to_the_queue_and_a_live_ones_stay(db):
    ann = _user(db, "ann")
    gone_job, live_job, lost_job = _queue(db, ann, 3)
    _worker(db, "gone", beat_ago_s=60)
    _worker(db, "live")
    _worker(db, "slow")
    _hand(db, gone_job, "gone", start=True)
    _hand(db, live_job, "live", start=True)
    _hand(db, lost_job, "slow", ago_s=120)  # handed long ago, never started: message lost
    with db.session() as session:
        assert registry.sweep(session, expiry_s=30, handover_s=60) == 2
    with db.session() as session:
        gone, live, lost = (session.get(Job, i) for i in (gone_job, live_job, lost_job))
        assert (gone.status, gone.worker, gone.attempts) == (QUEUED, None, 1)
        assert (live.status, live.worker) == (RUNNING, "live")
        assert (lost.status, lost.worker) == (QUEUED, None)
        assert session.get(Worker, "gone") is None
        assert session.get(Worker, "slow").job_id is None  # free for another job
        assert [w.name for w in registry.alive(session, 30)] == ["live", "slow"]


def test_a_worker_starting_again_under_its_name_gives_back_what_its_old_self_held(db):
    ann = _user(db, "ann")
    (job_id,) = _queue(db, ann)
    _worker(db, "w1")
    _hand(db, job_id, "w1", start=True)
    _worker(db, "w1")  # killed and started again before its heartbeat expired
    with db.session() as session:
        assert session.get(Job, job_id).status == QUEUED
        assert session.get(Worker, "w1").job_id is None


def test_only_the_run_that_owns_a_job_may_end_it(db):
    ann = _user(db, "ann")
    (job_id,) = _queue(db, ann)
    _worker(db, "w1")
    _worker(db, "w2")
    first = _hand(db, job_id, "w1", start=True)
    # w1 taken for dead: its job queued again and handed to w2
    with db.session() as session:
        session.delete(session.get(Worker, "w1"))
        session.flush()
        registry.sweep(session, expiry_s=30, handover_s=60)
    second = _hand(db, job_id, "w2", start=True)
    with pytest.raises(Superseded), db.session() as session:
        succeed(session, first)  # w1 was only slow, and finishes: it must not count
    with pytest.raises(Superseded):
        finish(db, first, "failed", "x", "y")
    with db.session() as session:
        assert own(session, second).worker == "w2"
        succeed(session, second)
    with pytest.raises(Superseded), db.session() as session:
        succeed(session, second)  # a duplicated message's run, after the job ended


def test_a_job_goes_to_the_idle_worker_that_holds_its_model():
    job = Job(model_name="b", model_path="/m/b.safetensors")
    cold = Worker(name="cold", models=[])
    full = Worker(name="full", models=["a", "c"])
    warm = Worker(name="warm", models=["a", "b"])
    assert choose_worker([cold, full, warm], job).name == "warm"
    # none holds it: the one holding fewest models (a load there evicts least)
    assert choose_worker([full, cold], job).name == "cold"
    assert choose_worker([full], job).name == "full"
    assert {choose_worker([cold, warm], job, affinity=False).name for _ in range(50)} == {
        "cold",
        "warm",
    }


def test_a_worker_finds_a_jobs_model_by_name_where_its_path_is_not(tmp_path):
    """A worker on another machine has its own models folder: the path the API recorded is
    not there, the model of that name is."""
    from sfumato.errors import ModelNotFound
    from sfumato.jobs.execute import checkpoint_here
    from sfumato.studio import Studio, StudioConfig

    studio = Studio(StudioConfig(data_dir=tmp_path, models_dirs=[tmp_path / "models"]))
    elsewhere = "/srv/other-machine/models/sfumato-demo"
    found = checkpoint_here(studio, elsewhere, "sfumato-demo")
    assert found.exists() and studio.source_of(found).name == "sfumato-demo"
    with pytest.raises(ModelNotFound, match="The model juggernaut is no longer installed"):
        checkpoint_here(studio, "/srv/other-machine/models/juggernaut.safetensors", "juggernaut")


def _jobs(*models):
    return [Job(id=str(i), model_name=m, model_path=f"/m/{m}") for i, m in enumerate(models)]


def test_a_job_waits_one_job_for_the_busy_worker_that_holds_its_model():
    """Two workers, two models, jobs alternating: the one free worker (holding A) takes the
    next A job rather than load B, whose worker is busy and takes B when it is done."""
    a_held = Worker(name="w1", models=["A"], job_id=None)
    b_busy = Worker(name="w2", models=["B"], job_id="running")
    order = _jobs("B", "A", "B", "A")
    pairs = pair_up(order, [a_held, b_busy], busy_models=["B"])
    assert [(job.model_name, worker.name) for job, worker in pairs] == [("A", "w1")]
    # without affinity, the first in order goes, and the model is loaded
    pairs = pair_up(order, [a_held, b_busy], busy_models=["B"], affinity=False)
    assert [(job.model_name, worker.name) for job, worker in pairs] == [("B", "w1")]


def test_a_popular_model_spreads_over_idle_workers_instead_of_queueing_behind_one():
    busy = Worker(name="w1", models=["A"], job_id="running")
    cold = Worker(name="w2", models=[], job_id=None)
    pairs = pair_up(_jobs("A", "A", "A"), [busy, cold], busy_models=["A"])
    # one A job waits for w1; the next is not held back: the idle worker loads A for it
    assert [(job.id, worker.name) for job, worker in pairs] == [("1", "w2")]
