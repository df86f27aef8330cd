"""Auth request and response bodies (never the table models themselves)."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import datetime
from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import EmailStr, Field, StringConstraints, field_validator

from crm2_core.schemas import RequestModel, ResponseModel

ROLE_NAME = r"^[a-z][a-z0-9_-]{1,63}$"
# Passwords are taken exactly as typed: request models strip other strings.
Password = Annotated[str, StringConstraints(strip_whitespace=False)]


def normal_email(value: str) -> str:
    """An address as accounts are stored and looked up: normalised as ``EmailStr`` does
    (NFC, the domain in Unicode), then lowercased, so that every way of writing one
    address (a decomposed é, a punycode domain, capitals) finds the same account."""
    value = value.strip()
    try:
        value = validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:  # no account has it; still one key for the throttle
        value = unicodedata.normalize("NFC", value)
    return value.lower()


def plain_email(value: str) -> str:
    """``value``, unless NFKC folds it into another string: full-width letters
    ("admin@…" written with U+FF41…), ligatures ("ﬁ"), circled or superscript forms look like
    (or are folded by other systems into) a plain address, so an account under one
    would pass for the plain one. Refused where accounts are made, rather than folded,
    because the stored address is also where mail goes: rewriting it would change it.
    (The domain needs nothing: IDNA already maps its full-width forms to ASCII.)

    Likewise a part (the local part, or one label of the domain) mixing Latin, Cyrillic
    and Greek letters: "admin" written with a Cyrillic a (U+0430) is another address that reads as
    "admin". Each script alone stays welcome ("иван@пример.рф")."""
    folded = unicodedata.normalize("NFKC", value)
    if folded != value:
        raise ValueError(
            "full-width letters, ligatures and other compatibility characters are not "
            f"taken in an address; write it as {folded}"
        )
    local, _, domain = value.rpartition("@")
    for label in (local, *domain.split(".")):
        scripts = _scripts(label)
        if len(scripts) > 1:
            raise ValueError(
                f"{label!r} mixes {' and '.join(sorted(scripts))} letters, as a look-alike of "
                "another address would (a Cyrillic a, U+0430, in 'admin'); write each part of the "
                "address in one script"
            )
    return value


# Cyrillic and Greek small letters drawn as a Latin one (UTS #39's confusables, narrowed
# to lowercase letters that look the same in common fonts): one script's address can
# pass for the other's ("ace" in Cyrillic letters, U+0430 U+0441 U+0435, for Latin
# "ace") although neither mixes scripts.
_LOOK_ALIKES = str.maketrans(
    {
        # Cyrillic (U+0430 a, U+0441 c, U+0435 e, U+043E o, U+0440 p, ...)
        "\u0430": "a", "\u0441": "c", "\u0501": "d", "\u0435": "e", "\u0451": "\u00eb",
        "\u0433": "r", "\u04bb": "h", "\u0456": "i", "\u0457": "\u00ef", "\u0458": "j",
        "\u04cf": "l", "\u043e": "o", "\u043f": "n", "\u0440": "p", "\u051b": "q",
        "\u0455": "s", "\u0443": "y", "\u04af": "y", "\u0475": "v", "\u051d": "w",
        "\u0445": "x",
        # Greek (U+03B1 a, U+03BF o, U+03C1 p, ...)
        "\u03b1": "a", "\u03b3": "y", "\u03b7": "n", "\u03b9": "i", "\u03bd": "v",
        "\u03bf": "o", "\u03c1": "p", "\u03f2": "c", "\u03c5": "u", "\u03c7": "x",
        "\u03f3": "j",
    }
)  # fmt: skip


def skeleton(address: str) -> str:
    """``address`` (as stored: lowercased, NFC) with every Cyrillic or Greek look-alike
    of a Latin letter read as that letter: two addresses with one skeleton read alike."""
    return address.translate(_LOOK_ALIKES)


# Letters of the scripts whose look-alikes pass for one another (UTS #39's "mixed script"
# check, narrowed to them): (first, last, script). unicodedata knows no scripts.
_SCRIPT_RANGES = (
    (0x0041, 0x005A, "Latin"),
    (0x0061, 0x007A, "Latin"),
    (0x00C0, 0x024F, "Latin"),  # Latin-1 letters, Latin Extended-A/B (U+00D7, U+00F7: no letters)
    (0x0250, 0x02AF, "Latin"),  # IPA extensions
    (0x0370, 0x03FF, "Greek"),
    (0x0400, 0x052F, "Cyrillic"),  # Cyrillic and its supplement
    (0x1C80, 0x1C8F, "Cyrillic"),
    (0x1D00, 0x1D7F, "Latin"),  # phonetic extensions
    (0x1E00, 0x1EFF, "Latin"),
    (0x1F00, 0x1FFF, "Greek"),
    (0x2C60, 0x2C7F, "Latin"),
    (0x2DE0, 0x2DFF, "Cyrillic"),
    (0xA640, 0xA69F, "Cyrillic"),
    (0xA720, 0xA7FF, "Latin"),
    (0xAB30, 0xAB6F, "Latin"),
)


def _scripts(label: str) -> set[str]:
    """Which of Latin, Cyrillic and Greek the letters of ``label`` are written in (digits,
    marks and punctuation belong to every script)."""
    found = set()
    for char in label:
        if not unicodedata.category(char).startswith("L"):
            continue
        point = ord(char)
        for first, last, script in _SCRIPT_RANGES:
            if first <= point <= last:
                found.add(script)
                break
    return found


class LoginRequest(RequestModel):
    email: str = Field(min_length=3, max_length=320)
    password: Password = Field(min_length=1, max_length=1024)


class RefreshRequest(RequestModel):
    refresh_token: str = Field(min_length=16, max_length=512)


class TokenPair(ResponseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class LoginPending(ResponseModel):
    """202 of ``/login``: the user confirms the sign-in elsewhere; poll ``/login/confirm``."""

    status: Literal["pending"] = "pending"
    confirmation_token: str = Field(description="the secret to poll POST /login/confirm with")
    expires_at: datetime
    poll_seconds: int = Field(2, description="a sensible pause between two polls")


class LoginConfirmRequest(RequestModel):
    confirmation_token: str = Field(min_length=16, max_length=512)


class UserPublic(ResponseModel):
    id: uuid.UUID
    email: str
    full_name: str
    is_active: bool
    roles: list[str]
    created_at: datetime
    updated_at: datetime
    version: int


class Me(UserPublic):
    permissions: list[str]


PASSWORD_MIN_LENGTH = 10


def visible_length(value: str) -> int:
    """The characters of ``value`` that show: control, format (zero-width space, BOM),
    private-use, surrogate and unassigned code points (Unicode category C) do not."""
    return sum(not unicodedata.category(char).startswith("C") for char in value)


class _Password(RequestModel):
    @field_validator("password", check_fields=False)
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank")
        # ``min_length`` counts code points: ten zero-width spaces passed it.
        if value is not None and visible_length(value) < PASSWORD_MIN_LENGTH:
            raise ValueError(
                f"must have at least {PASSWORD_MIN_LENGTH} visible characters (control and "
                "format characters such as zero-width spaces do not count)"
            )
        return value


CONFIRMING_ADMINISTRATION = (
    "your password as it is now: needed to grant auth:users or * (to make an administrator)"
)


class UserCreate(_Password):
    email: EmailStr = Field(max_length=320)
    password: Password = Field(min_length=PASSWORD_MIN_LENGTH, max_length=1024)
    full_name: str = Field("", max_length=200)
    roles: list[str] = Field(default_factory=lambda: ["viewer"], max_length=20)
    is_active: bool = True
    current_password: Password | None = Field(
        None, min_length=1, max_length=1024, description=CONFIRMING_ADMINISTRATION
    )

    @field_validator("email")
    @classmethod
    def _plain(cls, value: str) -> str:
        return plain_email(value)


class UserUpdate(_Password):
    full_name: str | None = Field(None, max_length=200)
    password: Password | None = Field(None, min_length=PASSWORD_MIN_LENGTH, max_length=1024)
    current_password: Password | None = Field(
        None,
        min_length=1,
        max_length=1024,
        description="your password as it is now: needed to change your own password, "
        "to reset another administrator's (a user holding auth:users or *) and to grant "
        "auth:users or *; not to reset another user's",
    )
    roles: list[str] | None = Field(None, max_length=20)
    is_active: bool | None = None
    revoke_api_keys: bool = Field(
        False,
        description="also revoke, at once, every API key the user made (and the keys "
        "made with those): after a suspected compromise, with a new password",
    )


class RolePublic(ResponseModel):
    name: str
    description: str
    builtin: bool
    permissions: list[str]
    version: int


class RoleCreate(RequestModel):
    name: str = Field(pattern=ROLE_NAME)
    description: str = Field("", max_length=500)
    permissions: list[str] = Field(default_factory=list, max_length=500)


class RoleUpdate(RequestModel):
    description: str | None = Field(None, max_length=500)
    permissions: list[str] | None = Field(None, max_length=500)
    current_password: Password | None = Field(
        None, min_length=1, max_length=1024, description=CONFIRMING_ADMINISTRATION
    )


class PermissionPublic(ResponseModel):
    name: str
    description: str
    plugin: str


class ApiKeyCreate(RequestModel):
    name: str = Field(min_length=1, max_length=200)
    role: str = Field(pattern=ROLE_NAME)
    expires_at: datetime | None = None
    current_password: Password | None = Field(
        None,
        min_length=1,
        max_length=1024,
        description="your password as it is now: needed to create a key with your access "
        "token (a key outlives the token); not with an API key",
    )

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a timezone (e.g. 2027-01-01T00:00:00Z)")
        return value


class ApiKeyPublic(ResponseModel):
    id: uuid.UUID
    name: str
    prefix: str
    role: str
    created_by: uuid.UUID | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="the key itself: shown this once, stored only as a hash")


class ReassignRequest(RequestModel):
    to: uuid.UUID = Field(description="the active user who takes the records over")


class ReassignResult(ResponseModel):
    moved: dict[str, int] = Field(description="records handed over, by table")
