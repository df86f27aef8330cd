"""Cursors are bound to their list and sort, and their values to the columns (issue 9, item 6).

Every cursor below carries a correct binding tag (made with ``encode_cursor`` for
the users list's ordering), so what is tested is the value check, not the tag.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import BigInteger, Column, Integer, MetaData, Numeric, String, Table

from crm2_core.auth.models import User
from crm2_core.db.pagination import (
    OrderKey,
    _check_values,
    cursor_scope,
    decode_cursor,
    encode_cursor,
)
from crm2_core.errors import InvalidCursor
from crm2_core.testing import Crm2TestApp

USERS = "/api/v1/auth/users"
USER_KEYS = [OrderKey(User.created_at), OrderKey(User.id)]
SCOPE = cursor_scope(USER_KEYS)
MOMENT = datetime(2024, 1, 1, tzinfo=UTC)


def _signed(values: list[Any]) -> str:
    return encode_cursor(values, SCOPE)


def _raw_signed(encoded: list[Any]) -> str:
    """A correctly tagged cursor around already-encoded JSON values (any shape)."""
    from crm2_core.db.pagination import _tag

    body = json.dumps(encoded, separators=(",", ":"))
    raw = json.dumps([_tag(SCOPE, body), encoded], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def test_scope_names_table_columns_and_directions() -> None:
    assert SCOPE == "auth_user.created_at:asc,auth_user.id:asc"
    descending = cursor_scope([OrderKey(User.created_at, True), OrderKey(User.id, True)])
    assert descending == "auth_user.created_at:desc,auth_user.id:desc"


def test_a_cursor_round_trips_in_its_own_list() -> None:
    ident = uuid.uuid4()
    assert decode_cursor(_signed([MOMENT, ident]), SCOPE, 2) == [MOMENT, ident]


def test_a_cursor_is_base64url_of_the_json_of_its_tag_and_values() -> None:
    """The issued text is unchanged by how it is built (cursors already handed out page on)."""
    values = [MOMENT, uuid.uuid4(), 'é "q"', None, Decimal("1.50")]
    encoded = [{"t": MOMENT.isoformat()}, {"u": str(values[1])}, 'é "q"', None, {"d": "1.50"}]
    assert _signed(values) == _raw_signed(encoded)


def test_a_cursor_of_another_sort_is_refused() -> None:
    other = cursor_scope([OrderKey(User.email), OrderKey(User.id)])
    cursor = encode_cursor(["a@example.com", uuid.uuid4()], other)
    with pytest.raises(InvalidCursor, match="another list or sort"):
        decode_cursor(cursor, SCOPE, 2)


def test_an_edited_cursor_is_refused() -> None:
    cursor = _signed([MOMENT, uuid.uuid4()])
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    edited = raw.replace("2024", "2023")
    forged = base64.urlsafe_b64encode(edited.encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidCursor):
        decode_cursor(forged, SCOPE, 2)


_table = Table(
    "probe",
    MetaData(),
    Column("small", Integer),
    Column("big", BigInteger),
    Column("amount", Numeric(18, 2)),
    Column("name", String(50), nullable=False),
)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        (_table.c.small, 2**31),
        (_table.c.small, -(2**31) - 1),
        (_table.c.big, 2**63),
        (_table.c.small, True),
        (_table.c.amount, Decimal("Infinity")),
        (_table.c.amount, Decimal("1e400")),
        (_table.c.name, "a\x00b"),
        (_table.c.name, "a\ud800b"),  # JSON's "\ud800": no driver can send it
        (_table.c.name, None),
    ],
    ids=["int32+1", "int32-1", "int64", "bool-for-int", "inf", "huge", "nul", "surrogate", "null"],
)
def test_out_of_range_or_wrong_values_are_refused(column: Any, value: Any) -> None:
    with pytest.raises(InvalidCursor):
        _check_values([OrderKey(column)], [value])


def test_values_within_the_column_pass() -> None:
    keys = [OrderKey(_table.c.small), OrderKey(_table.c.big), OrderKey(_table.c.amount)]
    _check_values(keys, [2**31 - 1, -(2**63), Decimal("12.50")])


@pytest.mark.parametrize(
    "encoded",
    [
        [{"t": "2024-01-01T00:00:00+00:00"}, 2**63],
        [{"t": "2024-01-01T00:00:00+00:00"}, {"u": str(uuid.uuid4()), "x": 1}],
        [{"t": "2024-01-01T00:00:00+00:00"}, [1, 2]],
        [{"t": 5}, {"u": str(uuid.uuid4())}],
        [{"q": "?"}, {"u": str(uuid.uuid4())}],
        [{"t": "2024-01-01T00:00:00+00:00"}, None],
        [{"t": "2024-01-01T00:00:00+00:00"}, "x\u0000"],
        [{"t": "2024-01-01T00:00:00+00:00"}],
    ],
    ids=["int-for-uuid", "two-tags", "list", "tag-not-text", "unknown-tag", "null", "nul", "short"],
)
async def test_a_tagged_cursor_of_the_wrong_shape_is_400_never_500(
    crm2: Crm2TestApp, encoded: list[Any]
) -> None:
    admin = await crm2.login("admin")

    response = await crm2.client.get(USERS, params={"cursor": _raw_signed(encoded)}, headers=admin)

    assert response.status_code == 400, response.text
    assert response.json()["type"] == "urn:crm2:problem:invalid-cursor"


async def test_the_issued_cursor_still_pages(crm2: Crm2TestApp) -> None:
    admin = await crm2.login("admin")
    await crm2.create_user("viewer")

    first = await crm2.client.get(USERS, params={"limit": 1}, headers=admin)
    cursor = first.json()["next_cursor"]
    second = await crm2.client.get(USERS, params={"limit": 1, "cursor": cursor}, headers=admin)

    assert second.status_code == 200
    assert second.json()["items"][0]["id"] != first.json()["items"][0]["id"]
