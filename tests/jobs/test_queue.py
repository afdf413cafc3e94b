"""The queue in the database: fair between users, bounded per user, safe to claim from two
workers, and what a dead process was running runs again."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select, update

from sfumato.errors import QueueFull
from sfumato.jobs.queue import (
    QUEUED,
    RUNNING,
    SUCCEEDED,
    claim_next,
    enqueue,
    fair_order,
    finish,
    queue_positions,
    requeue_lost,
)
from sfumato.store.db import Database
from sfumato.store.tables import Job, User


def _user(db, name):
    with db.session() as session:
        user = User(username=name, username_key=name, password_hash="x", preferences={})
        session.add(user)
        session.flush()
        return user.id


def _queue(db, user_id, n=1, limit=100):
    ids = []
    for _ in range(n):
        with db.session() as session:
            job = Job(user_id=user_id, model_name="m", model_path="/m", settings={}, total=1)
            ids.append(enqueue(session, job, limit).id)
    return ids


def _run_all(db):
    """Claim and finish jobs one by one, as the worker does; the order they ran in."""
    order = []
    while (job := claim_next(db)) is not None:
        order.append(job.id)
        finish(db, job, "succeeded")
    return order


def test_one_users_many_jobs_do_not_starve_anothers_one(db):
    ann, bob = _user(db, "ann"), _user(db, "bob")
    ann_jobs = _queue(db, ann, 6)
    (bob_job,) = _queue(db, bob)
    order = _run_all(db)
    assert order.index(bob_job) <= 1  # Ann's first may already be running
    assert [j for j in order if j != bob_job] == ann_jobs  # each user's own jobs in order


def test_the_least_recently_served_user_goes_first(db):
    ann, bob, cy = _user(db, "ann"), _user(db, "bob"), _user(db, "cy")
    _queue(db, ann, 1)
    _run_all(db)  # Ann has been served
    ann_next = _queue(db, ann, 2)
    bob_jobs = _queue(db, bob, 2)
    cy_jobs = _queue(db, cy, 1)
    with db.session() as session:
        planned = [j.id for j in fair_order(session)]
        positions = queue_positions(session)
    # never served come first (oldest first), Ann after them; then the second round
    assert planned == [bob_jobs[0], cy_jobs[0], ann_next[0], bob_jobs[1], ann_next[1]]
    assert positions[cy_jobs[0]] == 2
    assert _run_all(db) == planned


def test_a_user_beyond_the_limit_gets_a_sentence(db):
    ann = _user(db, "ann")
    _queue(db, ann, 3, limit=3)
    with pytest.raises(QueueFull, match="3 generations queued or running"):
        _queue(db, ann, 1, limit=3)
    _run_all(db)
    _queue(db, ann, 1, limit=3)  # finished jobs do not count


WORKERS, ROUNDS, JOBS_PER_ROUND = 4, 6, 12


def test_workers_claiming_at_the_same_moment_never_get_the_same_job(database_url):
    """A real race: four workers, each with its own connection pool as separate processes
    would have, released together by a barrier, claim until the queue is empty, round after
    round. Each worker reads the same fair order and goes for the same first job; only the
    claim's condition (still queued) keeps two of them from both taking it: without it, this
    fails in the first rounds on both databases."""
    workers = [Database(database_url) for _ in range(WORKERS)]
    workers[0].migrate()
    users = [_user(workers[0], name) for name in ("ann", "bob", "cy")]
    barrier = threading.Barrier(WORKERS)
    try:
        for _ in range(ROUNDS):
            queued = []
            for i in range(JOBS_PER_ROUND):
                queued += _queue(workers[0], users[i % len(users)])
            claims: list[list[str]] = [[] for _ in workers]
            with ThreadPoolExecutor(WORKERS) as pool:
                running = [
                    pool.submit(_claim_until_empty, db, barrier, mine)
                    for db, mine in zip(workers, claims, strict=True)
                ]
                for future in running:
                    future.result()
            claimed = [job_id for mine in claims for job_id in mine]
            assert sorted(claimed) == sorted(queued)  # each job once: none twice, none missed
            with workers[0].session() as session:
                rows = session.scalars(select(Job).where(Job.id.in_(queued))).all()
                assert {(job.status, job.attempts) for job in rows} == {(RUNNING, 1)}
                session.execute(update(Job).where(Job.id.in_(queued)).values(status=SUCCEEDED))
    finally:
        for db in workers:
            db.close()


def _claim_until_empty(db: Database, barrier: threading.Barrier, claimed: list[str]) -> None:
    barrier.wait(timeout=30)
    while (job := claim_next(db)) is not None:
        claimed.append(job.id)


def test_jobs_left_running_by_a_dead_process_are_queued_again(db):
    ann = _user(db, "ann")
    (job_id,) = _queue(db, ann)
    claimed = claim_next(db)
    assert claimed.id == job_id and claimed.attempts == 1
    with db.session() as session:
        assert requeue_lost(session, alive=[], at_start=True) == 1
    with db.session() as session:
        assert session.get(Job, job_id).status == QUEUED
    assert claim_next(db).attempts == 2
