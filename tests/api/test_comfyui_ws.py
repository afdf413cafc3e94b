"""ComfyUI's WebSocket (``/ws?clientId=``) against a real ``sfumato serve``, with the
``websockets`` client library: the status on connecting, a prompt's messages in ComfyUI's
order ending with ``executing`` of node null (its history written before), messages only for
the socket whose clientId queued the prompt, nothing ever from another user, previews only
for a client that asks for them, and sign-in by key, ``?token=``, Basic or cookie."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import struct

import httpx
import pytest
from PIL import Image
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.api.test_comfyui import default_graph
from tests.fixtures.served import served_with_users

WAIT_S = 120


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with served_with_users(tmp_path_factory.mktemp("comfyui-ws")) as server:
        yield server


def _ws(server, client_id: str = "", name: str = "ann") -> str:
    served, _ = server
    return f"ws://127.0.0.1:{served.port}/ws?clientId={client_id}"


def _bearer(server, name: str = "ann") -> dict:
    return {"Authorization": f"Bearer {server[1][name]}"}


def _queue(server, client_id: str | None, name: str = "ann", graph=None) -> str:
    body = {"prompt": graph or default_graph()}
    if client_id is not None:
        body["client_id"] = client_id
    answer = httpx.post(f"{server[0].url}/prompt", json=body, headers=_bearer(server, name))
    assert answer.status_code == 200, answer.text
    return answer.json()["prompt_id"]


async def _until_done(socket, prompt_id: str) -> list:
    """Every message up to ComfyUI's "done" (text as dicts, binary frames as bytes)."""
    received = []
    async with asyncio.timeout(WAIT_S):
        while True:
            message = await socket.recv()
            received.append(message if isinstance(message, bytes) else json.loads(message))
            last = received[-1]
            if (
                isinstance(last, dict)
                and last["type"] == "executing"
                and last["data"]["node"] is None
                and last["data"]["prompt_id"] == prompt_id
            ):
                return received


async def _pending(socket, wait: float = 0.5) -> list:
    """What a socket has been sent and not yet read."""
    found = []
    try:
        async with asyncio.timeout(wait):
            while True:
                found.append(await socket.recv())
    except TimeoutError:
        return found


def _types(messages: list) -> list[str]:
    return [m["type"] if isinstance(m, dict) else "binary" for m in messages]


def test_a_prompts_messages_in_order_to_its_client_only(server):
    async def run():
        mine = await connect(_ws(server, "mine"), additional_headers=_bearer(server))
        other = await connect(_ws(server, "other"), additional_headers=_bearer(server))
        bobs = await connect(_ws(server, "mine", "bob"), additional_headers=_bearer(server, "bob"))
        for socket, sid in ((mine, "mine"), (other, "other"), (bobs, "mine")):
            hello = json.loads(await socket.recv())
            assert hello == {
                "type": "status",
                "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": sid},
            }
        prompt_id = await asyncio.to_thread(_queue, server, "mine")
        messages = await _until_done(mine, prompt_id)
        # the history is written before "done" is sent: a client reads it at once
        history = await asyncio.to_thread(
            httpx.get, f"{server[0].url}/history/{prompt_id}", headers=_bearer(server)
        )
        others = await _pending(other)
        bob_got = await _pending(bobs)
        for socket in (mine, other, bobs):
            await socket.close()
        return prompt_id, messages, history.json(), others, bob_got

    prompt_id, messages, history, others, bob_got = asyncio.run(run())
    types = _types(messages)
    assert "binary" not in types  # no previews unless asked for
    order = [
        "execution_start",
        "execution_cached",
        "executing",
        "progress",
        "executed",
        "execution_success",
    ]
    positions = [types.index(t) for t in order]
    assert positions == sorted(positions), types
    assert types[-2:] == ["status", "executing"]
    assert messages[-2]["data"]["status"]["exec_info"]["queue_remaining"] == 0
    assert {"status": {"exec_info": {"queue_remaining": 1}}} in [
        m["data"] for m in messages if m["type"] == "status"
    ]
    for message in messages:
        if message["type"] != "status":
            assert message["data"]["prompt_id"] == prompt_id
    progress = [m["data"] for m in messages if m["type"] == "progress"]
    assert progress[-1] | {"prompt_id": None} == {
        "value": 2,
        "max": 2,
        "node": "3",
        "prompt_id": None,
    }
    (executed,) = [m["data"] for m in messages if m["type"] == "executed"]
    assert executed["node"] == "9"
    assert executed["output"]["images"] == history[prompt_id]["outputs"]["9"]["images"]
    assert history[prompt_id]["status"]["status_str"] == "success"

    # Ann's other socket hears the queue change, never the prompt's messages
    assert {json.loads(m)["type"] for m in others} == {"status"}
    assert bob_got == []  # nothing from another user, not even a status


def test_previews_only_for_a_client_that_asks(server):
    async def run():
        asking = await connect(_ws(server, "asking"), additional_headers=_bearer(server))
        await asking.recv()
        flags = {"supports_preview_metadata": True}
        await asking.send(json.dumps({"type": "feature_flags", "data": flags}))
        answer = json.loads(await asking.recv())
        assert answer["type"] == "feature_flags" and answer["data"]["supports_preview_metadata"]
        prompt_id = await asyncio.to_thread(_queue, server, "asking")
        messages = await _until_done(asking, prompt_id)
        await asking.close()
        return prompt_id, messages

    prompt_id, messages = asyncio.run(run())
    frames = [m for m in messages if isinstance(m, bytes)]
    assert frames, _types(messages)
    for frame in frames:
        event, length = struct.unpack(">II", frame[:8])
        assert event == 4
        metadata = json.loads(frame[8 : 8 + length])
        assert metadata["prompt_id"] == prompt_id and metadata["node_id"] == "3"
        assert metadata["image_type"] == "image/jpeg"
        assert Image.open(io.BytesIO(frame[8 + length :])).format == "JPEG"


async def _refusal(uri: str, **kwargs) -> int:
    """The close code a socket is refused with."""
    async with connect(uri, **kwargs) as socket:
        with pytest.raises(ConnectionClosed) as closed:
            await socket.recv()
    return closed.value.rcvd.code


async def _accepted(uri: str, **kwargs) -> dict:
    async with connect(uri, **kwargs) as socket:
        return json.loads(await socket.recv())


def test_signing_in(server):
    served, keys = server
    base = f"ws://127.0.0.1:{served.port}"
    login = httpx.post(
        f"{served.url}/v1/auth/login", json={"username": "ann", "password": "a long password"}
    )
    cookie = {"Cookie": f"sfumato_session={login.cookies['sfumato_session']}"}
    basic = base64.b64encode(f"ann:{keys['ann']}".encode()).decode()

    async def run():
        assert await _refusal(f"{base}/ws") == 4401
        assert await _refusal(f"{base}/api/ws?token=sfm_wrong") == 4401
        assert (await _accepted(f"{base}/ws?token={keys['ann']}"))["type"] == "status"
        assert await _accepted(f"{base}/api/ws", additional_headers=_bearer(server))
        # comfy-api-simplified's way: the user name and key in the URL (Basic)
        userinfo = f"ws://ann:{keys['ann']}@127.0.0.1:{served.port}/ws?clientId=x"
        assert (await _accepted(userinfo))["data"]["sid"] == "x"
        headers = {"Authorization": f"Basic {basic}"}
        assert (await _accepted(f"{base}/ws", additional_headers=headers))["type"] == "status"
        # a login cookie works from the server's own page, not from another site's
        assert await _accepted(f"{base}/ws", additional_headers=cookie, origin=served.url)
        evil = "http://evil.example"
        assert await _refusal(f"{base}/ws", additional_headers=cookie, origin=evil) == 1008
        assert await _refusal(f"{base}/ws", additional_headers=headers, origin=evil) == 1008
        # a key is not sent by a browser on its own: another site's page may use one
        assert await _accepted(f"{base}/ws?token={keys['ann']}", origin=evil)
        with pytest.raises((InvalidStatus, ConnectionClosed)):
            await _accepted(f"{base}/ws?clientId=" + "x" * 300, additional_headers=headers)

    asyncio.run(run())


def test_a_key_in_the_url_stays_out_of_the_log(caplog):
    import sfumato.api.comfyui.socket  # noqa: F401  (its filter is on uvicorn's loggers)

    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        logging.getLogger("uvicorn.error").info(
            '%s - "WebSocket %s" [accepted]', "127.0.0.1:5000", "/ws?clientId=a&token=sfm_secret"
        )
    assert "sfm_secret" not in caplog.text
    assert '"WebSocket /ws?clientId=a&token=..." [accepted]' in caplog.text
