"""The plugin installed in a whole app: a document uploaded through the API is kept on
the WebDAV server, and the rule about it is posted to the chat webhook."""

from __future__ import annotations

from pathlib import Path

from connectors_servers import WEBDAV_PASSWORD, WEBDAV_USER, ChatServer, WebDavServer

import crm2_connectors.plugin
from crm2_core.testing import assert_plugin_contract
from crm2_core.testing.pytest_plugin import AppFactory

DOCUMENTS = "/api/v1/documents/documents"


async def test_uploads_land_on_webdav_and_the_rule_posts_to_chat(
    crm2_app_factory: AppFactory, dav: WebDavServer, chat: ChatServer, tmp_path: Path
) -> None:
    app = await crm2_app_factory(
        plugins=["notifications", "documents", "connectors"],
        extra_plugins=(crm2_connectors.plugin,),
        plugin_settings={
            "documents": {"backend": "webdav", "local_root": str(tmp_path / "local")},
            "connectors": {
                "chat_webhook_url": chat.url,
                "webdav_url": dav.url,
                "webdav_username": WEBDAV_USER,
                "webdav_password": WEBDAV_PASSWORD,
            },
        },
    )
    admin, agent = await app.user("admin"), await app.user("agent")
    rule = await app.client.post(
        "/api/v1/notifications/rules",
        json={
            "name": "New file",
            "event_type": "documents.document.version_added",
            "template": {"title": "New file <{{ data.title }}>", "body": "Version added."},
            "recipients": {"users": [str(agent.id)]},
            "channels": ["chat"],
        },
        headers=admin.headers,
    )
    assert rule.status_code == 201, rule.text
    created = await app.client.post(
        DOCUMENTS, json={"title": "Signed offer", "kind": "other"}, headers=agent.headers
    )
    assert created.status_code == 201, created.text
    document = created.json()["id"]
    body = b"%PDF-1.4\n" + b"signed " * 500 + b"\n%%EOF\n"

    uploaded = await app.client.post(
        f"{DOCUMENTS}/{document}/versions",
        files={"file": ("offer.pdf", body, "application/pdf")},
        headers=agent.headers,
    )
    for _ in range(3):  # the event, then the delivery its rule queued
        await app.settle_events()

    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["backend"] == "webdav"
    kept = [p for p in dav.root.rglob("*") if p.is_file() and document in str(p)]
    assert [p.read_bytes() for p in kept] == [body]
    download = await app.client.get(f"{DOCUMENTS}/{document}/download", headers=agent.headers)
    assert download.status_code == 200 and download.content == body
    handle = "@" + agent.email.split("@")[0]
    assert [(p["channel"], p["text"]) for p in chat.posts] == [
        (handle, "*New file &lt;Signed offer&gt;*\nVersion added.")
    ]


async def test_connectors_keeps_the_plugin_contract(crm2_app_factory: AppFactory) -> None:
    await assert_plugin_contract(
        "connectors", crm2_app_factory, extra_plugins=(crm2_connectors.plugin,)
    )
