"""API schemas: Base (shared fields) and Public (what responses show). Credentials are never part of them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from kernel.secrets import redact_url
from registry.models import SceneType, SchoolKind
from web.models import User

T = TypeVar("T")


class DistrictPublic(BaseModel):
    """A district as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    code: str = Field(description="District code")
    name: str = Field(description="District name")
    school_count: int = Field(0, ge=0, description="Schools in the district")


class SchoolBase(BaseModel):
    """Fields every school representation has."""

    code: str = Field(description="School code, unique in the bureau")
    name: str = Field(description="School name")
    kind: SchoolKind = Field(description="Kind of school")
    address: str = Field("", description="Postal address")
    contact_name: str = Field("", description="Safety contact")
    contact_phone: str = Field("", description="Safety contact's phone")


class SchoolPublic(SchoolBase):
    """A school as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    district_code: str = Field(description="Code of the school's district")
    district_name: str = Field(description="Name of the school's district")
    camera_count: int = Field(0, ge=0, description="Cameras registered at the school")


class CameraBase(BaseModel):
    """Fields every camera representation has."""

    code: str = Field(description="Camera code, unique in the bureau")
    name: str = Field(description="Camera name")
    scene_type: SceneType = Field(description="What the camera looks at")
    enabled: bool = Field(True, description="Whether the camera is watched")
    key_scene: bool = Field(False, description="Key scene: patrolled more often")
    tags: list[str] = Field(default_factory=list, description="Free tags")
    location: str = Field("", description="Where the camera hangs")


class CameraPublic(CameraBase):
    """A camera as the API shows it: URLs redacted, never a password."""

    model_config = ConfigDict(from_attributes=True)

    school_code: str = Field(description="Code of the camera's school")
    school_name: str = Field(description="Name of the camera's school")
    main_url: str = Field(description="Main stream URL, credentials redacted")
    sub_url: str | None = Field(None, description="Sub stream URL, credentials redacted")
    has_credentials: bool = Field(description="Whether a user name / password is stored")
    updated_at: datetime = Field(description="Last change")

    @field_validator("main_url", "sub_url")
    @classmethod
    def _redacted(cls, value: str | None) -> str | None:
        return None if value is None else redact_url(value)


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    total: int = Field(ge=0, description="Rows matching the filter")
    offset: int = Field(ge=0, description="Index of the first row returned")
    limit: int = Field(ge=1, description="Most rows returned")
    items: list[T] = Field(description="The rows")


class UserRef(BaseModel):
    """A user as other records name them."""

    id: int = Field(description="User id")
    username: str = Field(description="Login name")
    display_name: str = Field(description="Name shown in the console")


def user_refs(session: Session, ids: Iterable[int | None]) -> dict[int, UserRef]:
    """The users with these ids (one query); ids of deleted users are missing."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(select(User.id, User.username, User.display_name).where(User.id.in_(wanted)))
    return {uid: UserRef(id=uid, username=name, display_name=shown) for uid, name, shown in rows}
