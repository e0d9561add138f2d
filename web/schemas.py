"""API schemas: Base (shared fields) and Public (what responses show). Credentials are never part of them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from kernel.secrets import redact_url
from registry.models import SceneType, SchoolKind
from web.models import Role, ScopeKind, User

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


Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S+$", description="A code (no spaces)")]
_WRITE = ConfigDict(extra="forbid")


class DistrictCreate(BaseModel):
    """A new district."""

    model_config = _WRITE

    code: Code = Field(description="District code, unique in the bureau")
    name: str = Field(min_length=1, max_length=128, description="District name")


class DistrictUpdate(BaseModel):
    """Changes to a district (fields left out stay as they are)."""

    model_config = _WRITE

    name: str = Field(min_length=1, max_length=128, description="District name")


class SchoolCreate(SchoolBase):
    """A new school."""

    model_config = _WRITE

    code: Code = Field(description="School code, unique in the bureau")
    name: str = Field(min_length=1, max_length=200, description="School name")
    district_code: Code = Field(description="Code of the school's district")
    address: str = Field("", max_length=300, description="Postal address")
    contact_name: str = Field("", max_length=100, description="Safety contact")
    contact_phone: str = Field("", max_length=40, description="Safety contact's phone")


class SchoolUpdate(BaseModel):
    """Changes to a school (fields left out stay as they are; a new district_code moves it)."""

    model_config = _WRITE

    name: str | None = Field(None, min_length=1, max_length=200, description="School name")
    kind: SchoolKind | None = Field(None, description="Kind of school")
    district_code: Code | None = Field(None, description="Move the school to this district")
    address: str | None = Field(None, max_length=300, description="Postal address")
    contact_name: str | None = Field(None, max_length=100, description="Safety contact")
    contact_phone: str | None = Field(None, max_length=40, description="Safety contact's phone")


# URLs and the password are plain strings here on purpose: pydantic's 422 would echo a rejected value (and with it
# a password); registry.edit checks them and names the field without quoting it.
class CameraCreate(BaseModel):
    """A new camera. Credentials are write-only: they are stored (the password encrypted) and never shown."""

    model_config = _WRITE

    code: Code = Field(description="Camera code, unique in the bureau")
    name: str = Field(min_length=1, max_length=200, description="Camera name")
    school_code: Code = Field(description="Code of the camera's school")
    scene_type: SceneType = Field(description="What the camera looks at")
    main_url: str = Field(description="Main stream, rtsp:// or rtsps:// (user:password@ in it is moved out)")
    sub_url: str | None = Field(None, description="Sub stream (same rules); null: none")
    username: str | None = Field(None, description="Camera user name (write-only)")
    password: str | None = Field(None, description="Camera password (write-only, stored encrypted)")
    enabled: bool = Field(True, description="Whether the camera is watched")
    key_scene: bool = Field(False, description="Key scene: patrolled more often")
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=50, description="Free tags"
    )
    location: str = Field("", max_length=300, description="Where the camera hangs")


class CameraUpdate(BaseModel):
    """Changes to a camera (fields left out stay as they are).

    ``username`` null or "" clears the stored user name and password; ``password`` null or "" clears the
    password; a URL with ``user:password@`` sets both. A new ``school_code`` moves the camera.
    """

    model_config = _WRITE

    name: str | None = Field(None, min_length=1, max_length=200, description="Camera name")
    school_code: Code | None = Field(None, description="Move the camera to this school")
    scene_type: SceneType | None = Field(None, description="What the camera looks at")
    main_url: str | None = Field(None, description="Main stream, rtsp:// or rtsps://")
    sub_url: str | None = Field(None, description="Sub stream; null or empty: none")
    username: str | None = Field(None, description="Camera user name (write-only)")
    password: str | None = Field(None, description="Camera password (write-only, stored encrypted)")
    enabled: bool | None = Field(None, description="Whether the camera is watched")
    key_scene: bool | None = Field(None, description="Key scene: patrolled more often")
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        None, max_length=50, description="Free tags (replace the stored ones)"
    )
    location: str | None = Field(None, max_length=300, description="Where the camera hangs")


class UserBase(BaseModel):
    """Fields every user representation has."""

    display_name: str = Field("", max_length=128, description="Name shown in the console")
    role: Role = Field(description="What the user may do")
    scope: ScopeKind = Field(ScopeKind.BUREAU, description="How much of the fleet the user sees")
    district_code: str | None = Field(None, max_length=32, description="The district of a district scope")
    school_code: str | None = Field(None, max_length=32, description="The school of a school scope")
    phone: str = Field("", max_length=40, description="Phone (duty alerts by SMS)")
    email: str = Field("", max_length=200, description="E-mail (duty alerts by mail)")


class UserPublic(UserBase):
    """A user as the API shows it (never the password hash)."""

    id: int = Field(description="User id")
    username: str = Field(description="Login name")
    active: bool = Field(description="Whether the user may log in")
    created_at: datetime = Field(description="When the account was made")


class UserCreate(UserBase):
    """A new user; without a password one is generated and returned once."""

    model_config = _WRITE

    username: str = Field(min_length=1, max_length=64, pattern=r"^[\w.@-]+$", description="Login name")
    active: bool = Field(True, description="Whether the user may log in")
    # Unconstrained here (a rejected password must not be echoed); checked by the router.
    password: str | None = Field(None, description="Initial password (min. length enforced); null: generate one")


class UserUpdate(BaseModel):
    """Changes to a user (fields left out stay as they are). Deactivating ends the user's sessions."""

    model_config = _WRITE

    display_name: str | None = Field(None, max_length=128, description="Name shown in the console")
    role: Role | None = Field(None, description="What the user may do")
    scope: ScopeKind | None = Field(None, description="Scope; give district_code / school_code with it")
    district_code: str | None = Field(None, max_length=32, description="The district of a district scope")
    school_code: str | None = Field(None, max_length=32, description="The school of a school scope")
    phone: str | None = Field(None, max_length=40, description="Phone")
    email: str | None = Field(None, max_length=200, description="E-mail")
    active: bool | None = Field(None, description="Whether the user may log in")


class PasswordSet(BaseModel):
    """A new password for a user; none given: one is generated and returned once."""

    model_config = _WRITE

    password: str | None = Field(None, description="The new password (min. length enforced); null: generate")


class UserCreated(BaseModel):
    """A user just made, with the generated password (shown this once; null when one was given)."""

    user: UserPublic = Field(description="The user")
    password: str | None = Field(description="The generated password, or null")


class PasswordResult(BaseModel):
    """A password just set; the user's sessions have ended."""

    username: str = Field(description="Whose password")
    password: str | None = Field(description="The generated password (shown this once), or null when given")


class MePublic(BaseModel):
    """The logged-in user, for the console."""

    id: int = Field(description="User id")
    username: str = Field(description="Login name")
    display_name: str = Field(description="Name shown in the console")
    role: Role = Field(description="What the user may do")
    scope: ScopeKind = Field(description="How much of the fleet the user sees")
    district_code: str | None = Field(description="District of a district scope, or of a school scope's school")
    school_code: str | None = Field(description="School of a school scope")
    school_codes: list[str] | None = Field(description="Codes of the visible schools; null: the whole bureau")
    phone: str = Field(description="Phone")
    email: str = Field(description="E-mail")
