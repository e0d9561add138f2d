"""API: the audit log, read-only (``GET /api/audit``), and the helpers the other routers write it with.

Auditors and administrators of the bureau scope read it; nobody edits it: there is no write endpoint, and the
database refuses UPDATE and DELETE on ``audit_log`` (triggers of migration 0006).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from web.audit import AuditAction, AuditEntry, record_audit
from web.auth import client_address
from web.deps import DbSession
from web.models import User
from web.permissions import AuditReader
from web.schemas import Page

router = APIRouter(prefix="/api", tags=["audit"])

SECRET_FIELDS = frozenset({"seed", "password", "password_encrypted", "secret", "token", "username_password"})
"""Fields of a change that never reach the audit row (their presence is recorded, not their value)."""


class AuditEntryPublic(BaseModel):
    """One audited action."""

    id: int = Field(description="Row id (increasing)")
    at: datetime = Field(description="When")
    actor_id: int | None = Field(None, description="User id of whoever acted (null: not logged in)")
    actor_name: str = Field(description="Username of whoever acted, or the name tried at a failed login")
    action: str = Field(description="What was done: " + ", ".join(a.value for a in AuditAction))
    target: str = Field(description="What it was done to, e.g. camera S11-GATE or wall 3")
    ip: str = Field(description="Address the request came from")
    detail: dict[str, Any] = Field(description="What changed or was exported (never a credential)")


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("(set)" if k in SECRET_FIELDS else _clean(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def record_change(
    session: Session,
    request: Request,
    user: User,
    target: str,
    op: str,
    changes: dict[str, Any] | None = None,
) -> None:
    """A ``config.change`` row: ``op`` (create, update, delete, ...) on ``target`` with the JSON ``changes``
    (values of :data:`SECRET_FIELDS` replaced by ``(set)``), in the caller's transaction."""
    detail: dict[str, object] = {"op": op}
    if changes:
        detail["changes"] = _clean(changes)
    record_audit(
        session, AuditAction.CONFIG_CHANGE, actor=user, target=target, ip=client_address(request), detail=detail
    )


def record_export(session: Session, request: Request, user: User, target: str, **detail: object) -> None:
    """An ``export`` row for a download of ``target`` (the caller commits)."""
    record_audit(
        session, AuditAction.EXPORT, actor=user, target=target, ip=client_address(request), detail=dict(detail)
    )


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@router.get("/audit", summary="The audit log")
def list_audit(
    session: DbSession,
    _reader: AuditReader,
    action: Annotated[AuditAction | None, Query(description="Only this action")] = None,
    actor: Annotated[str | None, Query(max_length=64, description="Only this username")] = None,
    target: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Only targets starting with this")
    ] = None,
    since: Annotated[AwareDatetime | None, Query(description="At or after (ISO 8601 with offset)")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Before (ISO 8601 with offset)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most rows returned")] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Rows skipped")] = 0,
) -> Page[AuditEntryPublic]:
    """Audit rows, newest first, with the number matching (auditors and administrators of the bureau)."""
    if since is not None and until is not None and until <= since:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "until must be after since")
    stmt = select(AuditEntry)
    if action is not None:
        stmt = stmt.where(AuditEntry.action == action.value)
    if actor is not None:
        stmt = stmt.where(AuditEntry.actor_name == actor)
    if target is not None:
        stmt = stmt.where(AuditEntry.target.like(_like_prefix(target), escape="\\"))
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.at < until)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit).offset(offset))
    items = [
        AuditEntryPublic(
            id=r.id,
            at=r.at,
            actor_id=r.actor_id,
            actor_name=r.actor_name,
            action=r.action,
            target=r.target,
            ip=r.ip,
            detail=dict(r.detail),
        )
        for r in rows
    ]
    return Page(total=total, offset=offset, limit=limit, items=items)
