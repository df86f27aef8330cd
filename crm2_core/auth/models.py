"""The auth plugin's tables (``auth_*``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, String
from sqlmodel import Field, SQLModel

from crm2_core.db import UtcDateTime, new_id, utcnow

PLUGIN = {"info": {"plugin": "auth"}}


def _ts(nullable: bool = False, index: bool = False) -> Column[datetime]:
    return Column(UtcDateTime(), nullable=nullable, index=index)


# A 64-character local part, "@" and a 255-character domain (RFC 5321).
MAX_EMAIL_LENGTH = 320


class User(SQLModel, table=True):
    __tablename__ = "auth_user"
    __table_args__ = PLUGIN

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    email: str = Field(max_length=MAX_EMAIL_LENGTH, unique=True)
    full_name: str = Field(default="", max_length=200)
    password_hash: str = Field(max_length=255)
    is_active: bool = True
    # Raised whenever roles, the active flag or the password change: access tokens
    # carry the value they were issued with and stop working once it moves on.
    credentials_version: int = 1
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(index=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    version: int = 1


class Role(SQLModel, table=True):
    __tablename__ = "auth_role"
    __table_args__ = PLUGIN

    name: str = Field(primary_key=True, max_length=64)
    description: str = Field(default="", max_length=500)
    builtin: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    version: int = 1


class PermissionRecord(SQLModel, table=True):
    """Every permission ever declared; default grants are applied the first time one is seen."""

    __tablename__ = "auth_permission"
    __table_args__ = PLUGIN

    name: str = Field(primary_key=True, max_length=128)
    description: str = Field(default="", max_length=500)
    plugin: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class RolePermission(SQLModel, table=True):
    __tablename__ = "auth_role_permission"
    __table_args__ = PLUGIN

    role_name: str = Field(
        sa_column=Column(
            String(64), ForeignKey("auth_role.name", ondelete="CASCADE"), primary_key=True
        )
    )
    permission: str = Field(primary_key=True, max_length=128)


class UserRole(SQLModel, table=True):
    __tablename__ = "auth_user_role"
    __table_args__ = PLUGIN

    user_id: uuid.UUID = Field(foreign_key="auth_user.id", primary_key=True, ondelete="CASCADE")
    role_name: str = Field(
        sa_column=Column(String(64), ForeignKey("auth_role.name"), primary_key=True, index=True)
    )


class RefreshToken(SQLModel, table=True):
    """One issued refresh token; only its SHA-256 is stored. A family is one login's chain."""

    __tablename__ = "auth_refresh_token"
    __table_args__ = (Index(None, "family_id"), {"info": {"plugin": "auth"}})

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    family_id: uuid.UUID
    user_id: uuid.UUID = Field(foreign_key="auth_user.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(max_length=64, unique=True)
    issued_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    expires_at: datetime = Field(sa_column=_ts())
    used_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class ApiKey(SQLModel, table=True):
    """An integration key scoped to one role; only its SHA-256 is stored."""

    __tablename__ = "auth_api_key"
    __table_args__ = PLUGIN

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(max_length=200)
    prefix: str = Field(max_length=16, unique=True)
    key_hash: str = Field(max_length=64)
    role_name: str = Field(
        sa_column=Column(String(64), ForeignKey("auth_role.name"), nullable=False)
    )
    created_by: uuid.UUID | None = Field(
        default=None, foreign_key="auth_user.id", ondelete="SET NULL"
    )
    # The key that created this one, if a key did: revoking a key revokes its offspring.
    created_by_key: uuid.UUID | None = Field(
        default=None, foreign_key="auth_api_key.id", ondelete="SET NULL", index=True
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(index=True))
    expires_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_used_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class LoginFailure(SQLModel, table=True):
    """Failed sign-ins on one account from one address: the progressive delay's memory."""

    __tablename__ = "auth_login_failure"
    __table_args__ = PLUGIN

    account: str = Field(primary_key=True, max_length=MAX_EMAIL_LENGTH)
    address: str = Field(primary_key=True, max_length=64)
    failures: int = 0
    last_failure_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    blocked_until: datetime = Field(default_factory=utcnow, sa_column=_ts())


class LoginChallenge(SQLModel, table=True):
    """A sign-in waiting for its user's confirmation (``crm2_confirm_login``).

    ``secret_hash`` is what the waiting client polls with; ``id`` is what the
    confirming side (a bot's button) names. pending → approved → used, or denied, or revoked.
    """

    __tablename__ = "auth_login_challenge"
    __table_args__ = PLUGIN

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    secret_hash: str = Field(max_length=64, unique=True)
    user_id: uuid.UUID = Field(foreign_key="auth_user.id", index=True, ondelete="CASCADE")
    address: str = Field(default="", max_length=64)
    status: str = Field(default="pending", max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    expires_at: datetime = Field(sa_column=_ts())
    decided_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


MODELS: list[type[SQLModel]] = [
    User,
    Role,
    PermissionRecord,
    RolePermission,
    UserRole,
    RefreshToken,
    ApiKey,
    LoginFailure,
    LoginChallenge,
]
