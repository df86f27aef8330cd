"""The public API for plugin authors: everything a plugin may import from ``crm2_core``.

A plugin (``plugins/*``, ``examples/plugins/*``) imports ``crm2_core.api`` and
nothing else from the core (``tests/test_public_api.py`` enforces it); its tests
also use ``crm2_core.testing``. Names here are the contract: they keep working
when the core's modules move. docs/plugins/authoring.md explains each group.
"""

from __future__ import annotations

from crm2_core.auth.confirmation import decide_login
from crm2_core.auth.deps import CurrentPrincipal, has_permission, require
from crm2_core.auth.models import User
from crm2_core.context import AppContext
from crm2_core.db import NAMING_CONVENTION, UtcDateTime, metadata, new_id, utcnow
from crm2_core.db.bulk import insert_rows
from crm2_core.db.direct import execute_in_session
from crm2_core.db.folding import fold_text, folded
from crm2_core.db.lists import in_values
from crm2_core.db.pagination import DEFAULT_LIMIT, OrderKey, PageParams, paginate, sort_order
from crm2_core.db.together import (
    NewRow,
    can_write_alone,
    insert_together,
    insert_together_if,
    new_row,
)
from crm2_core.db.turns import take_turns
from crm2_core.db.versioned import update_versioned
from crm2_core.errors import (
    BadRequest,
    ConfigurationError,
    Conflict,
    Crm2Error,
    Forbidden,
    InvalidCursor,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    ServiceUnavailable,
    TooManyRequests,
    Unprocessable,
    whole_seconds,
)
from crm2_core.events import SYSTEM, Actor, Envelope, EventData, publish, publish_many, publish_row
from crm2_core.events.taps import hear_relayed_events
from crm2_core.http.deps import ContextDep, SessionDep
from crm2_core.http.etag import IfMatchDep, OptionalIfMatch, check_version, etag_for
from crm2_core.http.pagination import Page, PageDep, page_response
from crm2_core.http.problems import never_answers, problem_responses
from crm2_core.http.routing import APIRouter
from crm2_core.http.streamed import STREAMED_BODY
from crm2_core.jobs import JobRunner
from crm2_core.kit.cli import env_count, run_with_context
from crm2_core.kit.csv import (
    CsvColumns,
    ExportStopped,
    cell,
    csv_response,
    export_pages,
    render,
    safe_cell,
    split_list,
    unguard,
)
from crm2_core.kit.exports import export_list, export_route, while_allowed
from crm2_core.kit.filenames import safe_filename
from crm2_core.kit.filters import (
    Condition,
    Filtered,
    as_utc,
    at_least,
    at_most,
    contains_text,
    eq,
    json_list_contains,
    like_pattern,
    one_of,
    where_all,
)
from crm2_core.kit.http import created, present
from crm2_core.kit.import_routes import import_routes
from crm2_core.kit.imports import (
    CsvFileInvalid,
    CsvImport,
    ImportJobNotFound,
    ImportJobPublic,
    ImportReport,
    ImportRowError,
    MisalignedRow,
    RowError,
    import_now,
    read_csv,
    validation_reason,
)
from crm2_core.kit.links import (
    EntityKind,
    EntityLink,
    EntityResolver,
    LinkInvalid,
    require_entity,
    resolve_entity,
)
from crm2_core.kit.owners import (
    OwnerForbidden,
    OwnerNotActive,
    OwnerNotPermitted,
    create_user,
    credential_permitted,
    is_active_user,
    resolve_owner,
    user_emails,
    user_grants,
    user_ids_by_email,
    user_permitted,
    users_permitted,
)
from crm2_core.kit.query import (
    Derived,
    Filter,
    LinkIdFilter,
    LinkKindFilter,
    ListQuery,
    list_query,
    query_filters,
)
from crm2_core.kit.records import Records
from crm2_core.kit.repository import Repository
from crm2_core.kit.routes import Permissions, create_route, list_route, record_routes
from crm2_core.kit.sorting import Sorts
from crm2_core.kit.visibility import (
    RecordRules,
    Visibility,
    acting_user,
    permitted_in_session,
)
from crm2_core.kit.visible import HIDDEN_BMP, refuse_hidden
from crm2_core.money import Amount, Currency, check_currency, exponent, from_minor, to_minor
from crm2_core.redis_guard import RedisGuard, RedisUnavailable
from crm2_core.schemas import (
    AwareIsoDateTime,
    Clearable,
    Int32,
    Int64,
    IsoDate,
    IsoDateTime,
    RequestModel,
    ResponseModel,
    UpdateModel,
    unstorable_text,
)

__all__ = [
    "DEFAULT_LIMIT",
    "HIDDEN_BMP",
    "NAMING_CONVENTION",
    "STREAMED_BODY",
    "SYSTEM",
    "APIRouter",
    "Actor",
    "Amount",
    "AppContext",
    "AwareIsoDateTime",
    "BadRequest",
    "Clearable",
    "Condition",
    "ConfigurationError",
    "Conflict",
    "ContextDep",
    "Crm2Error",
    "CsvColumns",
    "CsvFileInvalid",
    "CsvImport",
    "Currency",
    "CurrentPrincipal",
    "Derived",
    "EntityKind",
    "EntityLink",
    "EntityResolver",
    "Envelope",
    "EventData",
    "ExportStopped",
    "Filter",
    "Filtered",
    "Forbidden",
    "IfMatchDep",
    "ImportJobNotFound",
    "ImportJobPublic",
    "ImportReport",
    "ImportRowError",
    "Int32",
    "Int64",
    "InvalidCursor",
    "IsoDate",
    "IsoDateTime",
    "JobRunner",
    "LinkIdFilter",
    "LinkInvalid",
    "LinkKindFilter",
    "ListQuery",
    "MisalignedRow",
    "NewRow",
    "NotFound",
    "OptionalIfMatch",
    "OrderKey",
    "OwnerForbidden",
    "OwnerNotActive",
    "OwnerNotPermitted",
    "Page",
    "PageDep",
    "PageParams",
    "Permissions",
    "PreconditionFailed",
    "PreconditionRequired",
    "RecordRules",
    "Records",
    "RedisGuard",
    "RedisUnavailable",
    "Repository",
    "RequestModel",
    "ResponseModel",
    "RowError",
    "ServiceUnavailable",
    "SessionDep",
    "Sorts",
    "TooManyRequests",
    "Unprocessable",
    "UpdateModel",
    "User",
    "UtcDateTime",
    "Visibility",
    "acting_user",
    "as_utc",
    "at_least",
    "at_most",
    "can_write_alone",
    "cell",
    "check_currency",
    "check_version",
    "contains_text",
    "create_route",
    "create_user",
    "created",
    "credential_permitted",
    "csv_response",
    "decide_login",
    "env_count",
    "eq",
    "etag_for",
    "execute_in_session",
    "exponent",
    "export_list",
    "export_pages",
    "export_route",
    "fold_text",
    "folded",
    "from_minor",
    "has_permission",
    "hear_relayed_events",
    "import_now",
    "import_routes",
    "in_values",
    "insert_rows",
    "insert_together",
    "insert_together_if",
    "is_active_user",
    "json_list_contains",
    "like_pattern",
    "list_query",
    "list_route",
    "metadata",
    "never_answers",
    "new_id",
    "new_row",
    "one_of",
    "page_response",
    "paginate",
    "permitted_in_session",
    "present",
    "problem_responses",
    "publish",
    "publish_many",
    "publish_row",
    "query_filters",
    "read_csv",
    "record_routes",
    "refuse_hidden",
    "render",
    "require",
    "require_entity",
    "resolve_entity",
    "resolve_owner",
    "run_with_context",
    "safe_cell",
    "safe_filename",
    "sort_order",
    "split_list",
    "take_turns",
    "to_minor",
    "unguard",
    "unstorable_text",
    "update_versioned",
    "user_emails",
    "user_grants",
    "user_ids_by_email",
    "user_permitted",
    "users_permitted",
    "utcnow",
    "validation_reason",
    "where_all",
    "while_allowed",
    "whole_seconds",
]
