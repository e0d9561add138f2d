"""Camera sets: which cameras a tour, a patrol plan or a wall works on, chosen by place, scene, tags or a list.

A set matches the enabled cameras that pass every filter it has — place (its districts or its schools),
scene types, tags (any of them), key scenes only — and adds the cameras it lists by code. A set with no
filter is the listed cameras alone, or, listing none either, the whole fleet. Cameras come in the order a
wall shows them: district, school, camera code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from patrol.errors import PatrolError
from registry.models import Camera, District, SceneType, School

Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w.\-]+$")]
Tag = Annotated[str, Field(min_length=1, max_length=64)]


class CameraSet(BaseModel):
    """A selection of cameras (see the module docstring for how the fields combine)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    districts: tuple[Code, ...] = Field((), max_length=1000, description="District codes")
    schools: tuple[Code, ...] = Field((), max_length=10_000, description="School codes")
    scene_types: tuple[SceneType, ...] = Field((), max_length=20, description="Scene types, e.g. gate")
    tags: tuple[Tag, ...] = Field((), max_length=100, description="Cameras with any of these tags")
    key_scenes_only: bool = Field(False, description="Only cameras marked as key scenes")
    cameras: tuple[Code, ...] = Field((), max_length=20_000, description="Cameras added by code")

    @property
    def has_filter(self) -> bool:
        """Whether any filter (not the list of cameras) is set."""
        return bool(self.districts or self.schools or self.scene_types or self.tags or self.key_scenes_only)

    def matches(self, camera: CameraRef) -> bool:
        """Whether ``camera`` (an enabled one) belongs to the set: the definition that :func:`select` and
        :func:`resolve` apply."""
        return select_cameras([camera], self) != []

    def describe(self) -> str:
        """A short human description, e.g. ``districts D01 · scene gate``."""
        parts = []
        if self.districts:
            parts.append("districts " + ", ".join(self.districts))
        if self.schools:
            parts.append("schools " + ", ".join(self.schools[:5]) + (" …" if len(self.schools) > 5 else ""))
        if self.scene_types:
            parts.append("scenes " + ", ".join(s.value for s in self.scene_types))
        if self.tags:
            parts.append("tags " + ", ".join(self.tags))
        if self.key_scenes_only:
            parts.append("key scenes")
        if self.cameras:
            parts.append(f"{len(self.cameras)} listed cameras")
        return " · ".join(parts) or "the whole fleet"


@dataclass(frozen=True, slots=True)
class CameraRef:
    """What the patrol needs to know of one camera."""

    id: int
    code: str
    name: str
    scene_type: SceneType
    key_scene: bool
    school_id: int
    school_code: str
    school_name: str
    district_code: str
    tags: tuple[str, ...] = ()


def camera_set_from_json(value: dict[str, Any]) -> CameraSet:
    """A stored selector back as a :class:`CameraSet`; a stored value that no longer validates is an error."""
    try:
        return CameraSet.model_validate(value)
    except ValueError as err:
        raise PatrolError(f"stored camera set is invalid: {err}") from err


def _base_query() -> Select[Any]:
    return (
        select(
            Camera.id,
            Camera.code,
            Camera.name,
            Camera.scene_type,
            Camera.key_scene,
            Camera.tags,
            School.id,
            School.code,
            School.name,
            District.code,
        )
        .join(School, School.id == Camera.school_id)
        .join(District, District.id == School.district_id)
        .where(Camera.enabled.is_(True))
        .order_by(District.code, School.code, Camera.code)
    )


def resolve(session: Session, camera_set: CameraSet) -> list[CameraRef]:
    """The enabled cameras of ``camera_set``, by district, school and camera code.

    The query narrows the rows by place, scene and list (a superset of the set); :func:`select_cameras` decides.
    """
    stmt = _base_query()
    listed_clause = Camera.code.in_(camera_set.cameras)
    if camera_set.has_filter:
        filters = []
        if camera_set.districts or camera_set.schools:
            filters.append(or_(District.code.in_(camera_set.districts), School.code.in_(camera_set.schools)))
        if camera_set.scene_types:
            filters.append(Camera.scene_type.in_(camera_set.scene_types))
        if camera_set.key_scenes_only:
            filters.append(Camera.key_scene.is_(True))
        if filters:  # tags alone: every row comes back and is matched below
            matched = and_(*filters)
            stmt = stmt.where(or_(matched, listed_clause) if camera_set.cameras else matched)
    elif camera_set.cameras:
        stmt = stmt.where(listed_clause)
    return select_cameras(_refs(session, stmt), camera_set)


def load_fleet(session: Session) -> list[CameraRef]:
    """Every enabled camera, by district, school and camera code (for :func:`select_cameras`)."""
    return _refs(session, _base_query())


def _refs(session: Session, stmt: Select[Any]) -> list[CameraRef]:
    return [
        CameraRef(cid, code, name, scene, key, school_id, school, school_name, district, _tags(tags))
        for cid, code, name, scene, key, tags, school_id, school, school_name, district in session.execute(stmt)
    ]


def select_cameras(fleet: Sequence[CameraRef], camera_set: CameraSet) -> list[CameraRef]:
    """The cameras of ``fleet`` (enabled ones, in order) that belong to ``camera_set``; order kept."""
    listed = frozenset(camera_set.cameras)
    if not camera_set.has_filter:
        return [c for c in fleet if c.code in listed] if listed else list(fleet)
    places = frozenset(camera_set.districts), frozenset(camera_set.schools)
    scenes = frozenset(camera_set.scene_types)
    tags = frozenset(camera_set.tags)
    key_only = camera_set.key_scenes_only

    def wanted(c: CameraRef) -> bool:
        if c.code in listed:
            return True
        if (places[0] or places[1]) and c.district_code not in places[0] and c.school_code not in places[1]:
            return False
        if scenes and c.scene_type not in scenes:
            return False
        if tags and tags.isdisjoint(c.tags):
            return False
        return c.key_scene or not key_only

    return [c for c in fleet if wanted(c)]


def _tags(value: object) -> tuple[str, ...]:
    return tuple(str(t) for t in value) if isinstance(value, list) else ()


def unknown_codes(session: Session, camera_set: CameraSet) -> list[str]:
    """The district, school and camera codes of ``camera_set`` that the registry does not know, as messages."""
    problems = []
    for label, model, codes in (
        ("district", District, camera_set.districts),
        ("school", School, camera_set.schools),
        ("camera", Camera, camera_set.cameras),
    ):
        if codes:
            known = set(session.scalars(select(model.code).where(model.code.in_(codes))))
            problems += [f"unknown {label} {code!r}" for code in codes if code not in known]
    return problems


def codes_of(cameras: Sequence[CameraRef]) -> list[str]:
    """The cameras' codes, in order."""
    return [c.code for c in cameras]
