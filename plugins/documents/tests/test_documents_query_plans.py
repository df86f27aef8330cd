"""The tag filter uses its index: on PostgreSQL ``?tag=`` reads the GIN index on the tags'
keys, not every document. The SQL explained is what the API sends (as deals'
``test_query_plans``)."""

from __future__ import annotations

from typing import Any

import pytest
from documents_kit import API, Docs
from sqlalchemy import event, text

DOCUMENTS = 20_000


async def test_the_tag_filter_reads_the_tag_index(docs: Docs) -> None:
    if docs.app.context.settings.is_sqlite:
        pytest.skip("query plans are asserted on PostgreSQL")
    manager = await docs.user("manager")
    wanted = await docs.create(manager, tags=["Rare"])
    async with docs.app.context.engine.connect() as conn:
        await conn.execute(
            text(
                "INSERT INTO documents_document (id, title, kind, tags, tag_keys, owner_id,"
                " creator_id, current_version, search_text, created_at, updated_at, version)"
                " SELECT gen_random_uuid(), 'Bulk ' || n, 'other',"
                " json_build_array('common', 'tag' || (n % 50)),"
                " json_build_array('common', 'tag' || (n % 50)), :owner, :owner, 0, 'bulk',"
                " now(), now(), 1 FROM generate_series(1, :n) AS n"
            ),
            {"owner": manager.id, "n": DOCUMENTS},
        )
        await conn.execute(text("ANALYZE documents_document"))
        await conn.commit()
    seen: list[Any] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM documents_document" in statement and statement.lstrip().startswith("SELECT"):
            seen.append((statement, parameters))

    engine = docs.app.context.engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        found = await docs.client.get(
            f"{API}/documents", params={"tag": "RARE"}, headers=manager.headers
        )
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert [d["id"] for d in found.json()["items"]] == [wanted["id"]]
    [(statement, parameters)] = seen
    async with docs.app.context.engine.connect() as conn:
        result = await conn.exec_driver_sql("EXPLAIN " + statement, parameters)
        plan = "\n".join(row[0] for row in result)
    assert "ix_documents_document_tag_keys" in plan, plan
