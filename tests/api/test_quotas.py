"""Quotas through the real API: each one refuses with 403 quota_exceeded and a sentence that
names the limit, where the user stands and what to do, and nothing the user had is lost; a
job past its time limit fails with its own sentence."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import update

from sfumato import accounts, quotas
from sfumato.store.site import update_site
from sfumato.store.tables import Image, Upload, User
from tests.api.conftest import Server, png
from tests.api.conftest import User as Caller


def admin_of(server: Server) -> Caller:
    """The first account (the admin), signed up through the API, with a key that may
    administer (made in the database: what the key routes accept is not under test here)."""
    answer = TestClient(server.client.app).post(
        "/v1/auth/signup", json={"username": "root", "password": "a long password"}
    )
    assert answer.status_code == 201, answer.text
    with server.studio.db.session() as session:
        root = session.query(User).filter_by(username="root").one()
        key, _ = accounts.create_key(session, root, "admin", ["generate", "read", "admin"])
    return Caller("root", key, {"Authorization": f"Bearer {key}"})


def site_quotas(server: Server, **limits) -> None:
    with server.studio.db.session() as session:
        update_site(session, {"quotas": limits})


def user_quotas(server: Server, name: str, **limits) -> None:
    """The admin's overrides for one user (set as PATCH /v1/admin/users/{id} sets them)."""
    with server.studio.db.session() as session:
        session.execute(update(User).where(User.username == name).values(quotas=limits))


def refused(answer, *words: str) -> str:
    assert answer.status_code == 403, answer.text
    error = answer.json()["error"]
    assert error["code"] == "quota_exceeded"
    for word in words:
        assert word in error["message"], error["message"]
    return error["message"]


def jobs_of(server: Server, user: Caller) -> list[dict]:
    return server.get("/v1/generations", user).json()["generations"]


def test_the_admin_sets_the_defaults_and_a_job_over_its_compute_is_refused(server):
    admin = admin_of(server)
    ann = server.user("ann")
    changed = server.client.patch(
        "/v1/admin/settings", json={"quotas": {"job_megapixel_steps": 1}}, headers=admin.headers
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["quotas"]["job_megapixel_steps"] == 1
    bad = server.client.patch(
        "/v1/admin/settings", json={"quotas": {"job_megapixel_steps": -1}}, headers=admin.headers
    )
    assert bad.status_code == 400 and "whole number from 0" in bad.json()["error"]["message"]
    # 512 x 512 x 8 steps = 2.1 megapixel-steps, over the 1 allowed
    answer = server.post(
        "/v1/generations",
        ann,
        json={"prompt": "a red circle", "width": 512, "height": 512, "steps": 8},
    )
    refused(answer, "2.1 megapixel-steps", "quota of 1 per job", "fewer steps")
    assert jobs_of(server, ann) == []  # nothing queued
    # a small one passes
    assert server.generate(ann, width=64, height=64, steps=4)["status"] == "succeeded"


def test_the_days_compute_counts_what_was_admitted(server):
    ann = server.user("ann")
    small = {"width": 256, "height": 256, "steps": 8}  # 0.52 megapixel-steps
    site_quotas(server, daily_megapixel_steps=1)
    assert server.generate(ann, **small)["status"] == "succeeded"
    answer = server.post("/v1/generations", ann, json={"prompt": "again"} | small)
    refused(answer, "costs 0.5", "spent 0.5 of your 1 in the last 24 hours")
    assert len(jobs_of(server, ann)) == 1
    # another user has a day of their own
    assert server.generate(server.user("bob"), **small)["status"] == "succeeded"


def test_a_batch_that_would_pass_the_picture_count_is_refused_up_front(server):
    ann = server.user("ann")
    site_quotas(server, images=2)
    answer = server.post("/v1/generations", ann, json={"prompt": "three", "batch_size": 3})
    refused(answer, "You have 0 pictures; 3 more would pass your quota of 2", "delete pictures")
    job = server.generate(ann, batch_size=2, width=64, height=64)
    assert len(job["images"]) == 2
    refused(server.post("/v1/generations", ann, json={"prompt": "one more"}), "You have 2")
    # deleting a picture makes room again
    gone = server.client.delete(f"/v1/images/{job['images'][0]['id']}", headers=ann.headers)
    assert gone.status_code in (200, 204), gone.text
    assert server.generate(ann, width=64, height=64)["status"] == "succeeded"


def test_a_user_over_storage_can_neither_generate_nor_upload_and_keeps_everything(server):
    ann = server.user("ann")
    job = server.generate(ann, width=64, height=64)
    upload = server.post("/v1/uploads", ann, files={"file": ("a.png", png(), "image/png")})
    assert upload.status_code == 201, upload.text
    user_quotas(server, "ann", storage_mb=0)
    refused(
        server.post("/v1/generations", ann, json={"prompt": "more"}),
        "Your pictures and uploads take 0.0 MB",
        "storage quota is 0 MB",
        "delete pictures, or ask the server's admin",
    )
    again = server.post("/v1/uploads", ann, files={"file": ("b.png", png(), "image/png")})
    refused(again, "storage quota is 0 MB")
    # nothing lost
    assert server.get(job["images"][0]["url"], ann).status_code == 200
    assert server.get("/v1/images", ann).json()["total"] == 1
    # the bytes counted are the files' sizes on disk
    files = server.studio.files
    on_disk = sum(
        files.size(key)
        for key in (
            f"images/{_user_id(server, 'ann')}/{job['images'][0]['id']}.png",
            f"thumbs/{_user_id(server, 'ann')}/{job['images'][0]['id']}.webp",
            f"uploads/{_user_id(server, 'ann')}/{upload.json()['id']}.png",
        )
    )
    with server.studio.db.session() as session:
        assert quotas.stored_bytes(session, _user_id(server, "ann")) == on_disk > 0
    # bob is not limited: the override was ann's alone
    assert server.generate(server.user("bob"), width=64, height=64)["status"] == "succeeded"


def test_uploads_are_refused_at_their_count(server):
    ann = server.user("ann")
    site_quotas(server, uploads=1)
    first = server.post("/v1/uploads", ann, files={"file": ("a.png", png(), "image/png")})
    assert first.status_code == 201
    second = server.post("/v1/uploads", ann, files={"file": ("b.png", png(), "image/png")})
    refused(second, "You have 1 uploads, the most your quota allows (1)")
    # image-to-image with a picture sent inline is an upload too
    inline = server.post(
        "/v1/generations",
        ann,
        json={"prompt": "x", "init_image": "data:image/png;base64," + _b64(png())},
    )
    refused(inline, "uploads")
    # by its id, the kept upload still works
    job = server.generate(ann, init_image=first.json()["id"], width=64, height=64)
    assert job["status"] == "succeeded"


def test_a_user_override_of_null_is_unlimited_beside_a_strict_default(server):
    ann, bob = server.user("ann"), server.user("bob")
    site_quotas(server, images=0)
    user_quotas(server, "bob", images=None)
    refused(server.post("/v1/generations", ann, json={"prompt": "x"}), "quota of 0 pictures")
    assert server.generate(bob, width=64, height=64)["status"] == "succeeded"


def test_an_admitted_job_keeps_its_pictures_when_the_limits_tighten(make_server):
    server = make_server(run_worker=False)
    ann = server.user("ann")
    site_quotas(server, images=2, storage_mb=1)
    queued = server.post("/v1/generations", ann, json={"prompt": "x", "batch_size": 2})
    assert queued.status_code == 202, queued.text
    site_quotas(server, images=0, storage_mb=0)
    server.studio.dispatch.start()
    job = server.wait(queued.json()["id"], ann)
    assert job["status"] == "succeeded" and len(job["images"]) == 2


def test_a_job_past_its_time_limit_fails_with_a_sentence_under_the_limit_it_was_admitted_with(
    make_server,
):
    server = make_server(run_worker=False)
    ann = server.user("ann")
    site_quotas(server, job_seconds=0)
    before = server.post("/v1/generations", ann, json={"prompt": "slow", "steps": 50})
    assert before.status_code == 202
    site_quotas(server, job_seconds=None)  # lifted after admission: the job keeps its limit
    after = server.post("/v1/generations", ann, json={"prompt": "fine", "steps": 4})
    server.studio.dispatch.start()
    failed = server.wait(before.json()["id"], ann)
    assert failed["status"] == "failed"
    assert failed["error"] == {
        "code": "time_limit",
        "message": "The job ran past this server's limit of 0 s per job; ask for fewer steps "
        "or a smaller size.",
    }
    assert failed["images"] == []
    assert server.wait(after.json()["id"], ann)["status"] == "succeeded"  # the worker goes on


def test_sizes_of_old_pictures_and_uploads_are_filled_in_at_start(make_server, tmp_path):
    data = tmp_path / "shared"
    server = make_server(data_dir=data)
    ann = server.user("ann")
    server.generate(ann, width=64, height=64)
    server.post("/v1/uploads", ann, files={"file": ("a.png", png(), "image/png")})
    with server.studio.db.session() as session:
        before = quotas.stored_bytes(session, _user_id(server, "ann"))
        session.execute(update(Image).values(bytes=None))  # as rows made before sizes were kept
        session.execute(update(Upload).values(bytes=None))
    with server.studio.db.session() as session:
        assert quotas.stored_bytes(session, _user_id(server, "ann")) == 0
    again = make_server(data_dir=data)  # a start on the same data
    with again.studio.db.session() as session:
        assert quotas.stored_bytes(session, _user_id(server, "ann")) == before > 0


def test_the_report_shows_limits_and_usage(server):
    ann = server.user("ann")
    site_quotas(server, images=10)
    user_quotas(server, "ann", keys=5)
    server.generate(ann, width=64, height=64, steps=4)
    with server.studio.db.session() as session:
        report = quotas.QuotaReport.model_validate(
            quotas.report(session, session.get_one(User, _user_id(server, "ann")))
        )
    assert report.limits.images == 10 and report.limits.keys == 5
    assert report.limits.storage_mb is None
    assert report.usage.images == 1 and report.usage.keys == 1
    assert report.usage.megapixel_steps_today == round(64 * 64 * 4 / 1e6, 1)


def _user_id(server: Server, name: str) -> int:
    with server.studio.db.session() as session:
        return session.query(User).filter_by(username=name).one().id


def _b64(content: bytes) -> str:
    import base64

    return base64.b64encode(content).decode()


def test_the_dezgo_routes_answer_a_quota_and_a_time_limit_with_their_sentences(server):
    ann = server.user("ann")
    site_quotas(server, images=0)

    def text2image(**fields):
        return server.client.post(
            "/text2image", headers={"X-Dezgo-Key": ann.key}, data={"prompt": "x"} | fields
        )

    refused(text2image(), "quota of 0 pictures")
    site_quotas(server, images=None, job_seconds=0)
    late = text2image(steps="50")
    assert late.status_code == 403, late.text
    assert late.json()["error"]["code"] == "time_limit"
    assert "limit of 0 s per job" in late.json()["error"]["message"]


def test_a_picture_sent_with_a_refused_request_is_not_kept(server):
    ann = server.user("ann")
    site_quotas(server, images=0)
    inline = "data:image/png;base64," + _b64(png())
    for fields in ({"init_image": inline}, {"init_image": inline, "mask_image": inline}):
        answer = server.post("/v1/generations", ann, json={"prompt": "x"} | fields)
        refused(answer, "quota of 0 pictures")
    with server.studio.db.session() as session:
        assert quotas.usage(session, session.get_one(User, _user_id(server, "ann")))["uploads"] == 0
    assert not list((server.studio.data.root / "library").rglob("*.png"))
