"""History on disk and in the database: pages, filters, deletion and the retention purge."""

import base64
from datetime import timedelta

import pytest

from sfumato.errors import InvalidRequest, NotFound
from sfumato.store import history
from sfumato.store.files import LocalFiles
from sfumato.store.tables import Image, User, new_id, utcnow


@pytest.fixture
def files(tmp_path):
    return LocalFiles(tmp_path / "library")


def _user(session, name: str) -> User:
    user = User(username=name, username_key=name, password_hash="x", preferences={})
    session.add(user)
    session.flush()
    return user


def _image(session, files, user, prompt="a red circle", model="demo", age_days=0.0, fav=False):
    image_id = new_id()
    image = Image(
        id=image_id,
        user_id=user.id,
        created_at=utcnow() - timedelta(days=age_days),
        model_name=model,
        prompt=prompt,
        width=64,
        height=64,
        format="png",
        favourite=fav,
        file_key=f"images/{user.id}/{image_id}.png",
        thumb_key=f"thumbs/{user.id}/{image_id}.webp",
        settings={"seed": 1},
        model={"name": model},
    )
    files.put(image.file_key, b"picture")
    files.put(image.thumb_key, b"thumbnail")
    session.add(image)
    session.flush()
    return image


def test_pages_are_newest_first_and_the_cursor_walks_them_all(db, files):
    with db.session() as session:
        user = _user(session, "ann")
        made = [_image(session, files, user, age_days=i / 100) for i in range(7)]
    seen, cursor = [], None
    with db.session() as session:
        while True:
            rows, cursor, total = history.page(session, user.id, history.Filters(), 3, cursor)
            seen += [r.id for r in rows]
            if cursor is None:
                break
    assert total == 7
    assert seen == [image.id for image in made]  # made[0] is the newest


def test_filters_by_model_text_date_and_favourite(db, files):
    with db.session() as session:
        user = _user(session, "ann")
        red = _image(session, files, user, "A RED circle", model="dreamy", age_days=2)
        blue = _image(session, files, user, "a blue square", model="demo", fav=True)
        _image(session, files, user, "100% green_cross", model="demo", age_days=5)

    def ids(**filters):
        with db.session() as session:
            return {r.id for r in history.page(session, user.id, history.Filters(**filters))[0]}

    assert ids(model="DREAMY") == {red.id}
    assert ids(text="red") == {red.id}
    assert ids(text="%") != ids()  # a % in the text is a character, not a wildcard
    assert ids(favourite=True) == {blue.id}
    assert ids(since=utcnow() - timedelta(days=3)) == {red.id, blue.id}
    assert ids(until=utcnow() - timedelta(days=1)) == {red.id} | (ids(text="green"))


def test_deleting_removes_file_thumbnail_and_row_at_once(db, files):
    with db.session() as session:
        user = _user(session, "ann")
        image = _image(session, files, user)
    with db.session() as session:
        assert history.delete_own(session, files, user.id, [image.id]) == 1
    assert not files.path(image.file_key).exists()
    assert not files.path(image.thumb_key).exists()
    with db.session() as session:
        assert session.get(Image, image.id) is None


def test_one_foreign_id_deletes_nothing(db, files):
    with db.session() as session:
        ann, bob = _user(session, "ann"), _user(session, "bob")
        mine = _image(session, files, ann)
        theirs = _image(session, files, bob)
    with db.session() as session, pytest.raises(NotFound, match="nothing was deleted"):
        history.delete_own(session, files, ann.id, [mine.id, theirs.id])
    assert files.exists(mine.file_key) and files.exists(theirs.file_key)


def test_the_purge_deletes_old_pictures_but_keeps_favourites_and_new_ones(db, files):
    with db.session() as session:
        user = _user(session, "ann")
        old = _image(session, files, user, age_days=31)
        old_favourite = _image(session, files, user, age_days=400, fav=True)
        recent = _image(session, files, user, age_days=29)
    with db.session() as session:
        assert history.purge_expired(session, files, 0) == (0, 0)  # 0: keep forever
        assert history.purge_expired(session, files, 30) == (1, 0)
    assert not files.exists(old.file_key) and not files.exists(old.thumb_key)
    assert files.exists(old_favourite.file_key) and files.exists(recent.file_key)
    with db.session() as session:
        assert {i.id for i in session.query(Image)} == {old_favourite.id, recent.id}


def test_a_storage_key_never_leaves_the_folder(files):
    for key in ("../etc/passwd", "/abs", "images/../../x", "Images/UPPER"):
        with pytest.raises(ValueError):
            files.path(key)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


FORGED_CURSORS = [
    _b64(b"2026-01-01|abc"),  # naive date, short id: was a 500 (issue 23)
    _b64(b"2026-01-01T00:00:00|" + b"a" * 32),  # naive time
    _b64(b"2026-01-01T00:00:00+00:00|abc"),  # not an id
    _b64(b"2026-01-01T00:00:00+00:00|" + b"A" * 32),  # not a lower-case hex id
    _b64(b"2026-01-01T00:00:00+05:00|" + b"a" * 32),  # not what the server writes
    _b64(b"0000-01-01T00:00:00+00:00|" + b"a" * 32),  # year 0
    _b64(b"2026-13-45T25:61:61+00:00|" + b"a" * 32),  # no such day
    _b64(b"99999999-01-01T00:00:00+00:00|" + b"a" * 32),  # a huge year
    _b64(b"2026-01-01T00:00:00+00:00|" + b"a" * 32 + b"|x"),  # something after
    _b64(b"\xff\xfe\x00\x80|" + b"a" * 32),  # not UTF-8
    _b64(b"\x00" * 1000),  # long
    "%%%",
    "a",
    "not base64 at all!",
    "",
]


@pytest.mark.parametrize("cursor", FORGED_CURSORS)
def test_a_forged_cursor_is_refused_with_a_sentence(db, files, cursor):
    with db.session() as session:
        user = _user(session, "ann")
        _image(session, files, user)
    with db.session() as session:
        with pytest.raises(InvalidRequest, match="cursor"):
            history._decode(cursor)
        if cursor:  # "" is no cursor: the first page
            with pytest.raises(InvalidRequest, match="cursor"):
                history.page(session, user.id, history.Filters(), 3, cursor)


def test_a_cursor_the_server_wrote_is_accepted_whole_seconds_or_not(db, files):
    with db.session() as session:
        user = _user(session, "ann")
        images = [_image(session, files, user, age_days=i) for i in range(3)]
        images[1].created_at = images[1].created_at.replace(microsecond=0)
        session.flush()
        for image in images:
            created, image_id = history._decode(history._encode(image))
            assert (created, image_id) == (image.created_at, image.id)
