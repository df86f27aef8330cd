"""``/api/v1/auth``: sessions, the current user, and the admin endpoints."""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Annotated, Any

from fastapi import Depends, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.auth import repository as repo
from crm2_core.auth.deps import CurrentPrincipal, authenticator_of, require
from crm2_core.auth.errors import InvalidCredentials, RefreshTokenReused, UserNotFound
from crm2_core.auth.models import ApiKey, Role, User
from crm2_core.auth.privileges import acting_user
from crm2_core.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    LoginConfirmRequest,
    LoginPending,
    LoginRequest,
    Me,
    PermissionPublic,
    ReassignRequest,
    ReassignResult,
    RefreshRequest,
    RoleCreate,
    RolePublic,
    RoleUpdate,
    TokenPair,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from crm2_core.auth.service import AuthService
from crm2_core.errors import Forbidden
from crm2_core.http.deps import ContextDep, SessionDep, context_of, read_connection
from crm2_core.http.etag import IfMatchDep, OptionalIfMatch, etag_for
from crm2_core.http.pagination import Page, PageDep, page_response
from crm2_core.http.problems import never_answers, problem_responses
from crm2_core.http.routing import APIRouter
from crm2_core.http.security import NO_STORE
from crm2_hookspecs import Principal

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


async def auth_service(request: Request) -> AuthService:
    service: AuthService = context_of(request).auth
    return service


ServiceDep = Annotated[AuthService, Depends(auth_service)]
UsersAdmin = Annotated[Principal, Depends(require("auth:users"))]
RolesAdmin = Annotated[Principal, Depends(require("auth:roles"))]
ApiKeysAdmin = Annotated[Principal, Depends(require("auth:api_keys"))]


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _user_public(session: AsyncSession, user: User) -> UserPublic:
    roles = (await repo.roles_of(session, [user.id]))[user.id]
    return UserPublic.model_validate({**user.model_dump(), "roles": roles})


async def _role_public(session: AsyncSession, role: Role) -> RolePublic:
    permissions = (await repo.permissions_of_roles(session, [role.name]))[role.name]
    return RolePublic.model_validate({**role.model_dump(), "permissions": permissions})


def _api_key_public(row: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic.model_validate(_api_key_values(row))


def _api_key_values(row: ApiKey) -> dict[str, Any]:
    return {**row.model_dump(), "role": row.role_name}


# -- sessions -------------------------------------------------------------------------


LOGIN_PENDING: dict[int | str, dict[str, Any]] = {
    202: {
        "model": LoginPending,
        "description": "the account confirms sign-ins out of band (e.g. the Telegram bot): "
        "poll POST /api/v1/auth/login/confirm with the confirmation_token",
    }
}


@router.post(
    "/login",
    response_model=TokenPair | LoginPending,
    responses={**problem_responses(401, 503), **LOGIN_PENDING},
)
async def login(
    body: LoginRequest,
    request: Request,
    context: ContextDep,
    service: ServiceDep,
    response: Response,
) -> TokenPair | LoginPending:
    """Exchange e-mail and password for an access token and a refresh token.

    202 instead when the account confirms sign-ins out of band (``crm2_confirm_login``).
    """
    response.headers.update(NO_STORE)
    async with context.session_factory() as session:
        try:
            answer = await service.login(session, body.email, body.password, _client_ip(request))
        except InvalidCredentials:
            await session.commit()  # keep auth.login.failed, then refuse
            raise
        await session.commit()
    if isinstance(answer, LoginPending):
        response.status_code = status.HTTP_202_ACCEPTED
    return answer


@router.post(
    "/login/confirm",
    response_model=TokenPair | LoginPending,
    responses={**problem_responses(401), **LOGIN_PENDING},
)
async def confirm_login(
    body: LoginConfirmRequest, session: SessionDep, service: ServiceDep, response: Response
) -> TokenPair | LoginPending:
    """The tokens of a sign-in its user confirmed (once); 202 while it waits, 401 if refused."""
    response.headers.update(NO_STORE)
    answer = await service.confirm_login(session, body.confirmation_token)
    if isinstance(answer, LoginPending):
        response.status_code = status.HTTP_202_ACCEPTED
    return answer


@router.post("/refresh", response_model=TokenPair, responses=problem_responses(401))
async def refresh(
    body: RefreshRequest, context: ContextDep, service: ServiceDep, response: Response
) -> TokenPair:
    """Rotate a refresh token: the old one is spent, a new pair is returned."""
    response.headers.update(NO_STORE)
    async with context.session_factory() as session:
        try:
            pair = await service.refresh(session, body.refresh_token)
        except RefreshTokenReused:
            await session.commit()  # keep the family's revocation, then refuse
            raise
        await session.commit()
        return pair


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    # 204 whatever the token: no record in the path to miss, no state to conflict with
    openapi_extra=never_answers(404, 409),
)
async def logout(body: RefreshRequest, session: SessionDep, service: ServiceDep) -> Response:
    """Revoke a refresh token and every token rotated from the same login.

    204 whatever the token (unknown, spent, revoked or expired): signing out twice is
    no error, and the answer tells nobody whether a token exists.
    """
    await service.logout(session, body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=Me)
async def me(principal: CurrentPrincipal, request: Request) -> Me:
    """The signed-in user with their roles and effective permissions.

    ``"*"`` (admin) is listed together with every permission it stands for.
    """
    if principal.kind != "user":
        raise Forbidden("/auth/me describes users; this credential is an API key")
    async with read_connection(request) as connection:
        user = await repo.public_user(connection, principal.id)
    if user is None or not user["is_active"]:
        raise UserNotFound("the signed-in user no longer exists")
    enabled = authenticator_of(request).enabled_permissions
    # frozenset() of a frozenset is that same object; a backend's plain set is copied
    permissions = shown_permissions(frozenset(principal.permissions), enabled)
    return Me.model_validate({**user, "permissions": permissions})


@lru_cache(maxsize=256)
def shown_permissions(granted: frozenset[str], enabled: frozenset[str]) -> tuple[str, ...]:
    """What ``/auth/me`` lists for ``granted``, sorted: each of the few role sets there
    are is sorted once."""
    # A disabled plugin's grants stay in its roles, but mean nothing while it is off.
    shown = {p for p in granted if p == "*" or p in enabled}
    if "*" in shown:  # spell "everything" out, so a UI can check one name at a time
        shown |= enabled
    return tuple(sorted(shown))


# -- users ----------------------------------------------------------------------------


@router.get("/users", response_model=Page[UserPublic])
async def list_users(_: UsersAdmin, session: SessionDep, page: PageDep) -> Response:
    """Users, oldest first, cursor-paginated."""
    rows, cursor = await repo.list_users(session, page)
    roles = await repo.roles_of(session, [u.id for u in rows])
    items = [{**u.model_dump(), "roles": roles[u.id]} for u in rows]  # validated at once
    return page_response(UserPublic, items, cursor)


@router.post(
    "/users",
    response_model=UserPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(503),  # making an administrator: the login throttle is down
)
async def create_user(
    body: UserCreate,
    actor: UsersAdmin,
    session: SessionDep,
    service: ServiceDep,
    request: Request,
    response: Response,
) -> UserPublic:
    """Create a user with roles (default: viewer) whose permissions you hold yourself.

    A role granting ``auth:users`` or ``*`` (an administrator) needs your
    ``current_password`` (422 without, 403 if wrong, counted like a failed sign-in).
    """
    user = await service.create_user(session, body, actor, ip=_client_ip(request))
    response.headers["ETag"] = etag_for(user.version)
    response.headers["Location"] = f"/api/v1/auth/users/{user.id}"
    return await _user_public(session, user)


@router.get("/users/{user_id}", response_model=UserPublic)
async def get_user(
    user_id: uuid.UUID, _: UsersAdmin, session: SessionDep, service: ServiceDep, response: Response
) -> UserPublic:
    """One user; the ETag header is what a later PATCH sends as If-Match."""
    user = await service.get_user(session, user_id)
    response.headers["ETag"] = etag_for(user.version)
    return await _user_public(session, user)


@router.patch(
    "/users/{user_id}",
    response_model=UserPublic,
    responses=problem_responses(503),  # a confirmed change: the login throttle is down
)
async def update_user(
    user_id: uuid.UUID,
    body: UserUpdate,
    if_match: IfMatchDep,
    actor: UsersAdmin,
    session: SessionDep,
    service: ServiceDep,
    request: Request,
    response: Response,
) -> UserPublic:
    """Change a user's name, password, roles or active flag (If-Match required).

    Only a user whose permissions you hold yourself; your own roles and an admin
    need the admin role; your own password, and another administrator's (a user with
    ``auth:users`` or ``*``), needs your ``current_password`` (403 if wrong, counted
    like a failed sign-in). Roles, active flag and password changes end the user's
    tokens at once; ``revoke_api_keys`` also revokes every API key the user made.
    """
    ip = _client_ip(request)
    user = await service.update_user(session, user_id, if_match, body, actor, ip=ip)
    response.headers["ETag"] = etag_for(user.version)
    return await _user_public(session, user)


@router.post("/users/{user_id}/reassign", response_model=ReassignResult)
async def reassign_user(
    user_id: uuid.UUID,
    body: ReassignRequest,
    actor: UsersAdmin,
    session: SessionDep,
    service: ServiceDep,
) -> ReassignResult:
    """Hand every record the user owns, in every enabled plugin, to another active user."""
    moved = await service.reassign_user(session, user_id, body.to, actor)
    return ReassignResult(moved=moved)


@router.delete("/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(
    user_id: uuid.UUID,
    principal: UsersAdmin,
    session: SessionDep,
    service: ServiceDep,
    if_match: OptionalIfMatch = None,
) -> Response:
    """Delete a user and their sessions; 409 ``user-owns-records`` names what they still own.

    If-Match optional: when sent, another version of the user is 412 and nothing goes.
    """
    if acting_user(principal) == user_id:  # through one's own API key too: it acts for you
        raise Forbidden("you cannot delete yourself")
    await service.delete_user(session, user_id, principal, if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- roles and permissions --------------------------------------------------------


@router.get("/roles", response_model=list[RolePublic])
async def list_roles(_: RolesAdmin, session: SessionDep) -> list[RolePublic]:
    """Every role with its permissions."""
    return [await _role_public(session, r) for r in await repo.list_roles(session)]


@router.post("/roles", response_model=RolePublic, status_code=status.HTTP_201_CREATED)
async def create_role(
    body: RoleCreate,
    actor: RolesAdmin,
    session: SessionDep,
    service: ServiceDep,
    response: Response,
) -> RolePublic:
    """Create a role from declared permissions you hold yourself."""
    role = await service.create_role(session, body, actor)
    response.headers["ETag"] = etag_for(role.version)
    return await _role_public(session, role)


@router.get("/roles/{name}", response_model=RolePublic)
async def get_role(
    name: str, _: RolesAdmin, session: SessionDep, service: ServiceDep, response: Response
) -> RolePublic:
    """One role with its permissions."""
    role = await service.get_role(session, name)
    response.headers["ETag"] = etag_for(role.version)
    return await _role_public(session, role)


@router.patch(
    "/roles/{name}",
    response_model=RolePublic,
    responses=problem_responses(503),  # granting auth:users or *: the login throttle is down
)
async def update_role(
    name: str,
    body: RoleUpdate,
    if_match: IfMatchDep,
    actor: RolesAdmin,
    session: SessionDep,
    service: ServiceDep,
    request: Request,
    response: Response,
) -> RolePublic:
    """Change a role's description or permission set (If-Match required; only within yours).

    Adding ``auth:users`` or ``*`` needs your ``current_password``, as making an
    administrator does.
    """
    role = await service.update_role(session, name, if_match, body, actor, ip=_client_ip(request))
    response.headers["ETag"] = etag_for(role.version)
    return await _role_public(session, role)


@router.delete("/roles/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_role(
    name: str,
    actor: RolesAdmin,
    session: SessionDep,
    service: ServiceDep,
    if_match: OptionalIfMatch = None,
) -> Response:
    """Delete an unused, non-built-in role; If-Match optional (another version is 412)."""
    await service.delete_role(session, name, actor, if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/permissions", response_model=list[PermissionPublic])
async def list_permissions(
    _: RolesAdmin, session: SessionDep, context: ContextDep
) -> list[PermissionPublic]:
    """Every permission the enabled plugins declare."""
    return [
        PermissionPublic.model_validate(p)
        for p in await repo.list_permissions(session)
        if context.is_enabled(p.plugin)
    ]


# -- API keys ---------------------------------------------------------------------


@router.get("/api-keys", response_model=Page[ApiKeyPublic])
async def list_api_keys(
    actor: ApiKeysAdmin, session: SessionDep, service: ServiceDep, page: PageDep
) -> Response:
    """API keys you may manage (never the keys themselves), oldest first.

    The keys of every role whose permissions you hold (those you could make or
    revoke), and the keys you made; an admin sees every key.
    """
    rows, cursor = await service.list_api_keys(session, page, actor)
    return page_response(ApiKeyPublic, [_api_key_values(r) for r in rows], cursor)


@router.post(
    "/api-keys",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(503),  # current_password meets the login throttle: it is down
)
async def create_api_key(
    body: ApiKeyCreate,
    principal: ApiKeysAdmin,
    session: SessionDep,
    service: ServiceDep,
    request: Request,
    response: Response,
) -> ApiKeyCreated:
    """Create an API key scoped to one role whose permissions you hold; the key is shown once.

    With an access token it needs your ``current_password`` (422 without, 403 if wrong,
    counted like a failed sign-in): a key outlives the token. The key is revoked when
    its creator is deleted, deactivated or loses the right to create it.
    """
    response.headers.update(NO_STORE)
    row, key = await service.create_api_key(session, body, principal, ip=_client_ip(request))
    return ApiKeyCreated.model_validate({**_api_key_public(row).model_dump(), "key": key})


@router.delete("/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_api_key(
    key_id: uuid.UUID, actor: ApiKeysAdmin, session: SessionDep, service: ServiceDep
) -> Response:
    """Revoke an API key at once, with every key made with it: a key whose role you hold."""
    await service.revoke_api_key(session, key_id, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
