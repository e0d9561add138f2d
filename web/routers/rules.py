"""A camera's analytics rules: zones, lines and rules, read by every role in scope, written by administrators.

The rules in force are the configuration file's ``analytics.cameras`` with the console's rules file over them
(:mod:`config.rules_file`): ``PUT`` writes the camera's entry of that file (atomically; every other camera's
entry is kept), ``DELETE`` removes it so that the configured rules apply again. The analytics pipeline re-reads
the file within ``analytics.analyze_check_s`` of the change. Bodies are validated with the analytics models
(:class:`~config.rules.CameraRulesConfig`), so a bad body is a 422 naming the field. Every write is audited.
"""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import Field

from config.loader import ConfigError
from config.rules import CameraRulesConfig, FallRule
from config.rules_file import read_rules_file, rules_file_path, write_camera_rules
from config.schema import Settings
from web.audit import AuditAction, record_audit
from web.auth import client_address
from web.deps import AppSettings, DbSession
from web.permissions import AdminUser
from web.routers.registry import scoped_camera, unprocessable
from web.scopes import Scope, UserScope

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["rules"])


class CameraRulesPublic(CameraRulesConfig):
    """A camera's rules in force, and where they come from."""

    camera_code: str = Field(description="The camera")
    source: Literal["console", "config", "none"] = Field(
        description="console: set through this API; config: from the configuration file; none: no rules"
    )


def _console_rules(settings: Settings) -> dict[str, CameraRulesConfig]:
    try:
        return read_rules_file(rules_file_path(settings.data_dir))
    except ConfigError as err:
        log.error("%s", err)
        raise HTTPException(
            status.HTTP_409_CONFLICT, "the stored rules file is invalid; fix it (see the server log) first"
        ) from err


def _in_force(settings: Settings, code: str) -> CameraRulesPublic:
    console = _console_rules(settings)
    if code in console:
        rules, source = console[code], "console"
    elif code in settings.analytics.cameras:
        rules, source = settings.analytics.cameras[code], "config"
    else:
        rules, source = CameraRulesConfig(), "none"
    return CameraRulesPublic(camera_code=code, source=source, **rules.model_dump())


@router.get("/cameras/{code}/rules", summary="A camera's analytics rules")
def get_rules(code: str, session: DbSession, scope: UserScope, settings: AppSettings) -> CameraRulesPublic:
    """The zones, lines and rules in force on a visible camera."""
    camera = scoped_camera(session, scope, code)
    return _in_force(settings, camera.code)


def _write(settings: Settings, code: str, rules: CameraRulesConfig | None) -> None:
    try:
        write_camera_rules(rules_file_path(settings.data_dir), code, rules)
    except ConfigError as err:
        log.error("%s", err)
        raise HTTPException(
            status.HTTP_409_CONFLICT, "the stored rules file is invalid; fix it (see the server log) first"
        ) from err
    except OSError as err:
        log.error("the rules file cannot be written: %s", err)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the rules file cannot be written") from err


@router.put("/cameras/{code}/rules", summary="Set a camera's analytics rules")
def put_rules(
    code: str,
    body: CameraRulesConfig,
    request: Request,
    session: DbSession,
    admin: AdminUser,
    settings: AppSettings,
) -> CameraRulesPublic:
    """Replace the camera's zones, lines and rules (an empty body switches its rules off). Analytics applies
    them within ``analytics.analyze_check_s``."""
    camera = scoped_camera(session, Scope.of(admin), code)
    if settings.analytics.fall_detector is None:
        falls = [i for i, rule in enumerate(body.rules) if isinstance(rule, FallRule)]
        if falls:
            raise unprocessable([(f"rules.{i}.type", "a fall rule needs analytics.fall_detector") for i in falls])
    record_audit(
        session,
        AuditAction.CONFIG_CHANGE,
        actor=admin,
        target=f"rules of camera {camera.code}",
        ip=client_address(request),
        detail={
            "op": "put",
            "zones": [z.name for z in body.zones],
            "lines": [x.name for x in body.lines],
            "rules": [f"{r.type}:{r.name}" for r in body.rules],
        },
    )
    # The file first: if it cannot be written the audit row is rolled back with the request.
    _write(settings, camera.code, body)
    session.commit()
    log.info("rules of camera %s set by %s (%d rules)", camera.code, admin.username, len(body.rules))
    return _in_force(settings, camera.code)


@router.delete("/cameras/{code}/rules", summary="Go back to the configured rules")
def delete_rules(
    code: str, request: Request, session: DbSession, admin: AdminUser, settings: AppSettings
) -> CameraRulesPublic:
    """Remove the console's rules of the camera: the configuration file's apply again (if any)."""
    camera = scoped_camera(session, Scope.of(admin), code)
    record_audit(
        session,
        AuditAction.CONFIG_CHANGE,
        actor=admin,
        target=f"rules of camera {camera.code}",
        ip=client_address(request),
        detail={"op": "delete"},
    )
    _write(settings, camera.code, None)
    session.commit()
    log.info("console rules of camera %s removed by %s", camera.code, admin.username)
    return _in_force(settings, camera.code)
