"""The history through the API: newest first, filters, favourites, deletion that is gone from
the disk when the call returns, deleting everything, and the retention purge."""

import base64
from datetime import timedelta

from sqlalchemy import update

from sfumato.store.tables import Image, utcnow


def _files(server, image):
    """The picture's file and thumbnail on the server's disk."""
    with server.studio.db.session() as session:
        row = session.get(Image, image["id"])
        return [server.studio.files.path(row.file_key), server.studio.files.path(row.thumb_key)]


def test_history_lists_newest_first_with_filters_and_pages(server):
    red = server.generate(prompt="a red circle", seed=1)["images"][0]
    blue = server.generate(prompt="a blue square", seed=2, batch_size=2)["images"]
    listed = server.get("/v1/images").json()
    assert listed["total"] == 3
    assert {i["id"] for i in listed["images"][:2]} == {blue[0]["id"], blue[1]["id"]}
    assert listed["images"][-1]["id"] == red["id"]  # oldest last
    assert listed["images"][0]["settings"]["prompt"] == "a blue square"
    assert listed["retention"]["days"] == 30 and listed["retention"]["favourites_kept"]
    assert [i["id"] for i in server.get("/v1/images", params={"q": "RED"}).json()["images"]] == [
        red["id"]
    ]
    assert server.get("/v1/images", params={"model": "sfumato-demo"}).json()["total"] == 3
    assert server.get("/v1/images", params={"model": "other"}).json()["total"] == 0
    tomorrow = (utcnow() + timedelta(days=1)).isoformat()
    assert server.get("/v1/images", params={"since": tomorrow}).json()["total"] == 0
    first = server.get("/v1/images", params={"limit": 2}).json()
    rest = server.get("/v1/images", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    ids = [i["id"] for i in first["images"] + rest["images"]]
    assert len(set(ids)) == 3 and rest["next_cursor"] is None
    bad = server.get("/v1/images", params={"cursor": "garbage"})
    assert bad.status_code == 400 and "cursor" in bad.json()["error"]["message"]


def test_favourites(server):
    image = server.generate()["images"][0]
    marked = server.client.patch(
        f"/v1/images/{image['id']}", json={"favourite": True}, headers=server.user().headers
    )
    assert marked.json()["favourite"] is True
    assert server.get(f"/v1/images/{image['id']}").json()["favourite"] is True
    assert server.get("/v1/images", params={"favourite": True}).json()["total"] == 1
    server.client.patch(
        f"/v1/images/{image['id']}", json={"favourite": False}, headers=server.user().headers
    )
    assert server.get("/v1/images", params={"favourite": True}).json()["total"] == 0


def test_deleting_one_picture_removes_it_from_the_disk_at_once(server):
    image = server.generate()["images"][0]
    files = _files(server, image)
    assert all(f.is_file() for f in files)
    answer = server.client.delete(f"/v1/images/{image['id']}", headers=server.user().headers)
    assert answer.json() == {"deleted": 1}
    assert not any(f.exists() for f in files)
    assert server.get(image["url"]).status_code == 404
    assert server.get("/v1/images").json()["total"] == 0


def test_deleting_many_and_deleting_everything(server):
    images = server.generate(batch_size=4)["images"]
    files = [f for image in images for f in _files(server, image)]
    chosen = [images[0]["id"], images[1]["id"]]
    answer = server.post("/v1/images/delete", json={"ids": chosen})
    assert answer.json() == {"deleted": 2}
    assert not any(f.exists() for f in files[:4]) and all(f.exists() for f in files[4:])
    server.client.patch(
        f"/v1/images/{images[2]['id']}", json={"favourite": True}, headers=server.user().headers
    )
    kept = server.client.delete(
        "/v1/images", params={"keep_favourites": True}, headers=server.user().headers
    )
    assert kept.json() == {"deleted": 1}
    everything = server.client.delete("/v1/images", headers=server.user().headers)
    assert everything.json() == {"deleted": 1}
    assert not any(f.exists() for f in files)
    assert server.get("/v1/images").json()["total"] == 0


def test_the_retention_purge_keeps_favourites(server):
    old, old_favourite, new = server.generate(batch_size=3)["images"]
    server.client.patch(
        f"/v1/images/{old_favourite['id']}", json={"favourite": True}, headers=server.user().headers
    )
    with server.studio.db.session() as session:
        long_ago = utcnow() - timedelta(days=31)
        session.execute(
            update(Image)
            .where(Image.id.in_([old["id"], old_favourite["id"]]))
            .values(created_at=long_ago)
        )
    files = _files(server, old)
    assert server.studio.purge() == (1, 0)
    assert not any(f.exists() for f in files)
    left = {i["id"] for i in server.get("/v1/images").json()["images"]}
    assert left == {old_favourite["id"], new["id"]}


def test_the_retention_period_is_an_admin_setting(server):
    server.user("ann")  # the first account: the admin; its everyday key may not administer
    login = server.client.post(
        "/v1/auth/login", json={"username": "ann", "password": "a long password"}
    )
    made = server.client.post(
        "/v1/keys",
        json={"name": "admin", "scopes": ["generate", "read", "admin"]},
        headers={"X-CSRF-Token": login.json()["csrf_token"]},
    )
    admin = type(server.user("ann"))("ann", "", {"Authorization": f"Bearer {made.json()['key']}"})
    server.client.cookies.clear()
    other = server.user("bob")
    change = server.client.patch(
        "/v1/admin/settings", json={"retention_days": 7}, headers=admin.headers
    )
    assert change.status_code == 200 and change.json()["retention_days"] == 7
    assert server.get("/v1/admin/settings", admin).json()["retention_days"] == 7
    assert server.get("/v1/admin/settings", other).status_code == 403
    assert server.get("/v1/images", other).json()["retention"]["days"] == 7
    refused = server.client.patch(
        "/v1/admin/settings", json={"retention_days": 1}, headers=other.headers
    )
    assert refused.status_code == 403
    bad = server.client.patch(
        "/v1/admin/settings", json={"retention_days": -1}, headers=admin.headers
    )
    assert bad.status_code == 400 and "retention_days" in bad.json()["error"]["message"]
    unknown = server.client.patch("/v1/admin/settings", json={"colour": 1}, headers=admin.headers)
    assert unknown.status_code == 400 and "signup_open" in unknown.json()["error"]["message"]


def test_a_forged_cursor_is_a_400_not_a_500(server):
    # issue 23: a naive date reached the database ("naive datetime given to the database")
    forged = base64.urlsafe_b64encode(b"2026-01-01|abc").decode()
    answer = server.get("/v1/images", params={"cursor": forged})
    assert answer.status_code == 400 and "cursor" in answer.json()["error"]["message"]
