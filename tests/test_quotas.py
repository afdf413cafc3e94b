"""Quotas: the site's defaults merged with a user's overrides, the usage counted from the
database, and the site setting that holds the defaults."""

import json
from datetime import timedelta

import pytest

from sfumato import accounts, quotas
from sfumato.errors import InvalidRequest, QuotaExceeded
from sfumato.store.site import read_site, update_site
from sfumato.store.tables import Image, Job, Upload, User, utcnow


def _settings(width=512, height=512, steps=20, batch_size=1, mode="txt2img", strength=None):
    return {
        "width": width,
        "height": height,
        "steps": steps,
        "batch_size": batch_size,
        "mode": mode,
        "strength": strength,
    }


def test_nothing_is_limited_until_the_admin_says_so(db):
    with db.session() as session:
        user = accounts.create_user(session, "ann", "long enough")
        limits = quotas.limits_for(session, user)
        assert limits == quotas.Quotas()
        assert all(value is None for value in limits.model_dump().values())
        assert read_site(session).quotas == dict.fromkeys(quotas.NAMES)


def test_a_users_overrides_win_over_the_sites_defaults_and_null_means_unlimited(db):
    with db.session() as session:
        update_site(session, {"quotas": {"images": 100, "storage_mb": 50, "keys": 3}})
        user = accounts.create_user(session, "ann", "long enough")
        user.quotas = {"images": 500, "storage_mb": None}  # more pictures, no storage limit
        limits = quotas.limits_for(session, user)
        assert limits.images == 500  # the user's own
        assert limits.storage_mb is None  # null: unlimited for this user alone
        assert limits.keys == 3  # not named: the site's
        other = accounts.create_user(session, "bob", "long enough")
        assert quotas.limits_for(session, other).images == 100


def test_the_site_setting_changes_only_the_limits_named(db):
    with db.session() as session:
        update_site(session, {"quotas": {"images": 100, "keys": 3}})
        update_site(session, {"quotas": {"images": None, "uploads": 10}})
        assert read_site(session).quotas == dict.fromkeys(quotas.NAMES) | {
            "keys": 3,
            "uploads": 10,
        }


@pytest.mark.parametrize(
    ("value", "sentence"),
    [
        ({"images": -1}, "quotas.images is a whole number from 0"),
        ({"images": "500"}, "quotas.images is a whole number from 0"),
        ({"images": True}, "quotas.images is a whole number from 0"),
        ({"images": 2.5}, "quotas.images is a whole number from 0"),
        ({"pictures": 5}, "no limit 'pictures'; the limits are images, uploads"),
        (5, "quotas is an object of limits"),
    ],
)
def test_bad_limits_are_refused_with_a_sentence(db, value, sentence):
    with db.session() as session, pytest.raises(InvalidRequest, match=sentence):
        update_site(session, {"quotas": value})


def test_compute_counts_what_the_engine_runs():
    assert quotas.megapixel_steps(_settings()) == pytest.approx(512 * 512 * 20 / 1e6)
    assert quotas.megapixel_steps(_settings(batch_size=4)) == pytest.approx(4 * 5.24288)
    # image-to-image at strength 0.5 runs half the steps (diffusers starts part-way)
    half = _settings(mode="img2img", strength=0.5)
    assert quotas.megapixel_steps(half) == pytest.approx(512 * 512 * 10 / 1e6)
    # a tiny strength still runs one step
    assert quotas.megapixel_steps(_settings(mode="inpaint", strength=0.01)) == pytest.approx(
        512 * 512 / 1e6
    )


def test_usage_counts_pictures_uploads_bytes_keys_sessions_and_the_days_compute(db):
    with db.session() as session:
        user = accounts.create_user(session, "ann", "long enough")
        other = accounts.create_user(session, "bob", "long enough")
        for owner, size in ((user, 1_500_000), (user, None), (other, 9_000_000)):
            session.add(_image(owner, size))
        session.add(Upload(user_id=user.id, width=8, height=8, file_key="u", bytes=250_000))
        accounts.create_key(session, user, "one")
        _, revoked = accounts.create_key(session, user, "two")
        revoked.revoked_at = utcnow()
        _, expired = accounts.create_key(session, user, "three")
        expired.expires_at = utcnow() - timedelta(minutes=1)
        accounts.start_session(session, user)
        now = utcnow()
        session.add_all(
            [
                _job(user, "succeeded", now - timedelta(hours=1), started=True),  # counts
                _job(user, "queued", now),  # admitted: counts
                _job(user, "cancelled", now, started=False),  # never ran: free
                _job(user, "failed", now - timedelta(hours=25), started=True),  # too old
                _job(other, "succeeded", now, started=True),  # not hers
            ]
        )
        session.flush()
        used = quotas.usage(session, user)
        report = quotas.QuotaReport.model_validate(quotas.report(session, user))
    assert used == {
        "images": 2,
        "uploads": 1,
        "storage_mb": 1.8,  # 1.5 MB + 0.25 MB; a picture of unknown size counts nothing yet
        "keys": 1,  # neither the revoked key nor the expired one
        "sessions": 1,
        "megapixel_steps_today": round(2 * 512 * 512 * 20 / 1e6, 1),
    }
    assert report.usage.images == 2 and report.limits.images is None


def test_keys_are_refused_at_the_limit_with_a_sentence(db):
    with db.session() as session:
        user = accounts.create_user(session, "ann", "long enough")
        user.quotas = {"keys": 1, "sessions": 4}
        quotas.check_keys(session, user)  # none yet
        accounts.create_key(session, user, "one")
        with pytest.raises(QuotaExceeded, match=r"1 active API keys.*\(1\); revoke one"):
            quotas.check_keys(session, user)
        assert quotas.sessions_limit(session, user) == 4


def _image(user: User, size: int | None) -> Image:
    return Image(
        user_id=user.id,
        model_name="m",
        prompt="p",
        width=8,
        height=8,
        format="png",
        file_key="f",
        thumb_key="t",
        settings={},
        model={},
        bytes=size,
    )


def _job(user: User, status: str, created, started: bool = False) -> Job:
    return Job(
        user_id=user.id,
        status=status,
        created_at=created,
        started_at=created if started else None,
        model_name="m",
        model_path="m",
        settings=_settings(),
    )


def test_one_limit_is_set_from_the_command_line(tmp_path):
    from typer.testing import CliRunner

    from sfumato.cli import app

    data = ["--data-dir", str(tmp_path)]
    runner = CliRunner()
    assert runner.invoke(app, ["settings", "set", "quotas.images", "500", *data]).exit_code == 0
    answer = runner.invoke(app, ["settings", "set", "quotas.keys", "3", *data])
    assert answer.exit_code == 0, answer.output
    shown = json.loads(runner.invoke(app, ["settings", "show", *data]).output)
    assert shown["quotas"]["images"] == 500 and shown["quotas"]["keys"] == 3
    wrong = runner.invoke(app, ["settings", "set", "quotas.pictures", "5", *data])
    assert wrong.exit_code == 1 and "no limit 'pictures'" in wrong.output
