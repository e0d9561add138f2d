"""The configuration schema: one pydantic model per section, every field bounded and described.

Values come, highest precedence first, from keyword arguments (the command line), ``CAMPUSWATCH_*`` environment
variables (nested with ``__``, e.g. ``CAMPUSWATCH_WEB__PORT=8080``), the YAML file, and the defaults below.
Secrets (database and Redis passwords, the session key) come only from the environment or a file.
"""

from __future__ import annotations

import zoneinfo
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.analytics import AnalyticsConfig
from config.diagnosis import DiagnosisConfig
from config.live import LiveConfig
from config.notify import NotifyConfig
from config.patrol import PatrolConfig
from kernel.db import default_database_url
from kernel.paths import DEFAULT_DATA_DIR


class Section(BaseModel):
    """Base of every section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class InstanceConfig(Section):
    """Who this installation serves."""

    name: str = Field(
        "Municipal Education Bureau", min_length=1, max_length=100, description="Bureau name shown in the console"
    )
    timezone: str = Field(
        "Asia/Shanghai", min_length=1, max_length=64, description="IANA timezone of schedules and reports"
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown timezone {value!r} (use an IANA name such as Asia/Shanghai)") from err
        return value


class StorageConfig(Section):
    """The database. Without a URL, SQLite in the data directory (embedded mode)."""

    database_url: SecretStr | None = Field(
        None,
        description=(
            "SQLAlchemy URL, e.g. postgresql+psycopg://cw@db/campuswatch; "
            "set it with CAMPUSWATCH_STORAGE__DATABASE_URL"
        ),
    )
    database_url_file: Path | None = Field(
        None, description="File holding the database URL (e.g. a Docker secret)"
    )
    echo_sql: bool = Field(False, description="Log every SQL statement (debugging only)")


class BusConfig(Section):
    """The event bus: in-process (embedded) or Redis Streams (distributed)."""

    url: SecretStr = Field(
        SecretStr("memory://"),
        description="memory:// or redis://host:6379/0; a password only through CAMPUSWATCH_BUS__URL",
    )
    retention: int = Field(100_000, ge=1_000, le=10_000_000, description="Events kept per topic (approximate)")


class WebConfig(Section):
    """The web console and API."""

    host: str = Field("127.0.0.1", min_length=1, max_length=255, description="Address to listen on")
    port: int = Field(8000, ge=1, le=65535, description="TCP port to listen on")
    session_secret: SecretStr | None = Field(
        None,
        description=(
            "Key that signs session cookies (CAMPUSWATCH_WEB__SESSION_SECRET); "
            "default: a key file in the data directory"
        ),
    )
    page_size: int = Field(100, ge=10, le=1000, description="Rows per page in lists")
    secure_cookies: bool = Field(
        False, description="Mark the session cookies Secure (set this when the console is served over HTTPS)"
    )
    session_max_age_s: int = Field(
        12 * 3600, ge=300, le=7 * 86400, description="A session ends this long after login (seconds)"
    )
    login_max_failures: int = Field(
        5, ge=1, le=100, description="Failed logins of one user name or one address allowed per window"
    )
    login_window_s: int = Field(900, ge=10, le=86400, description="The window of the login rate limit (seconds)")


class SimulatorConfig(Section):
    """The RTSP camera simulator (demo and tests)."""

    enabled: bool = Field(True, description="Start the simulator with the demo")
    host: str = Field("127.0.0.1", min_length=1, max_length=255, description="Address the RTSP server listens on")
    port: int = Field(8554, ge=0, le=65535, description="RTSP port (0 picks a free one)")
    schedule_file: Path | None = Field(None, description="YAML file of per-camera scene schedules")
    clip_gops: int = Field(
        6, ge=1, le=60, description="Scene clip length in 2-s GOPs (rendered once, cached in <data_dir>/sim-clips)"
    )


class DemoConfig(Section):
    """The demo bureau that ``campuswatch demo`` creates."""

    districts: int = Field(3, ge=1, le=20, description="Number of districts")
    schools_per_district: int = Field(4, ge=1, le=200, description="Schools in each district")
    cameras_per_school: int = Field(5, ge=1, le=64, description="Cameras in each school")
    seed: int = Field(2026, ge=0, le=2**31 - 1, description="Seed of the generated names and scenes")
    intrusion_every_s: float = Field(
        90.0,
        ge=0,
        le=86_400,
        description=(
            "Every so often an intruder climbs the perimeter wall on one empty-yard camera (a scripted incident "
            "whose alarm latency the demo logs); 0 turns it off"
        ),
    )
    intrusion_first_s: float = Field(
        30.0, ge=0, le=86_400, description="Seconds after the start until the first scripted intrusion"
    )
    webhook_port: int = Field(
        8099,
        ge=0,
        le=65535,
        description="Port of the demo's local webhook receiver, the duty phone's stand-in (0: a free port)",
    )


class IngestConfig(Section):
    """Camera stream readers, health and fleet sharding (``campuswatch ingest``)."""

    open_timeout_s: float = Field(5.0, ge=0.5, le=60, description="Longest wait to open a stream")
    read_timeout_s: float = Field(5.0, ge=0.5, le=60, description="Longest wait for the next packet of a stream")
    max_concurrent_opens: int = Field(
        16, ge=1, le=1000, description="Streams a worker opens at the same time (no stampede on restart)"
    )
    backoff_initial_s: float = Field(1.0, ge=0.1, le=60, description="First reconnect delay (doubles, jittered)")
    backoff_max_s: float = Field(60.0, ge=1, le=3600, description="Longest reconnect delay")
    stable_after_s: float = Field(
        30.0, ge=1, le=3600, description="A connection up this long resets the reconnect back-off"
    )
    no_keyframe_s: float = Field(
        10.0, ge=2, le=600, description="Connected but no keyframe for this long: degraded (no data)"
    )
    analyze_fps: float = Field(5.0, ge=0.2, le=30, description="Frames per second decoded in analyze mode")
    watch_keyframe_every_s: float = Field(
        10.0,
        ge=0,
        le=600,
        description="Watch mode decodes at most one keyframe per this many seconds (0: every keyframe); "
        "thumbnails and quality diagnosis refresh at this pace, health from every packet",
    )
    prefer_sub_stream: bool = Field(
        True, description="Read the camera's sub stream when it has one (cheaper to decode; same scene)"
    )
    heartbeat_s: float = Field(2.0, ge=0.1, le=60, description="Worker heartbeat period (distributed mode)")
    heartbeat_ttl_s: float = Field(
        6.0, ge=0.3, le=600, description="A worker silent this long is dead; its cameras move to the others"
    )
    figures_every_s: float = Field(
        10.0, ge=1, le=600, description="How often stream figures (bitrate, fps, ...) are stored"
    )
    fleet_refresh_s: float = Field(30.0, ge=1, le=3600, description="How often the camera list is re-read")
    thumbnail_ttl_s: int = Field(
        600, ge=10, le=86_400, description="Thumbnails older than this are dropped (distributed mode)"
    )
    thumbnail_quality: int = Field(70, ge=20, le=95, description="JPEG quality of thumbnails")

    @field_validator("heartbeat_ttl_s")
    @classmethod
    def _ttl_covers_heartbeats(cls, value: float, info: ValidationInfo) -> float:
        heartbeat = info.data.get("heartbeat_s")
        if heartbeat is not None and value < 2 * heartbeat:
            raise ValueError(f"must be at least twice heartbeat_s ({heartbeat} s)")
        return value


class LoggingConfig(Section):
    """Log output."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Minimum level logged")
    json_lines: bool = Field(False, description="One JSON object per line instead of text")


class Settings(BaseSettings):
    """The whole configuration of one campuswatch process."""

    model_config = SettingsConfigDict(
        env_prefix="CAMPUSWATCH_", env_nested_delimiter="__", extra="forbid", frozen=True, case_sensitive=False
    )

    data_dir: Path = Field(DEFAULT_DATA_DIR, description="Where the database, key file, clips and snapshots live")
    instance: InstanceConfig = Field(default_factory=InstanceConfig, description="Who this installation serves")
    storage: StorageConfig = Field(default_factory=StorageConfig, description="Database")
    bus: BusConfig = Field(default_factory=BusConfig, description="Event bus")
    web: WebConfig = Field(default_factory=WebConfig, description="Web console and API")
    simulator: SimulatorConfig = Field(default_factory=SimulatorConfig, description="RTSP camera simulator")
    demo: DemoConfig = Field(default_factory=DemoConfig, description="Demo bureau")
    ingest: IngestConfig = Field(default_factory=IngestConfig, description="Camera readers and health")
    diagnosis: DiagnosisConfig = Field(
        default_factory=DiagnosisConfig, description="Video-quality diagnosis on keyframes"
    )
    analytics: AnalyticsConfig = Field(default_factory=AnalyticsConfig, description="Detection and rules")
    patrol: PatrolConfig = Field(
        default_factory=PatrolConfig, description="Walls, tours, patrol plans, hazards, clocks, reports"
    )
    notify: NotifyConfig = Field(
        default_factory=NotifyConfig, description="Duty-phone alerts: channels, routing, escalation, retries"
    )
    live: LiveConfig = Field(default_factory=LiveConfig, description="Live view of cameras over WebRTC")
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Log output")

    @field_validator("analytics")
    @classmethod
    def _one_timezone(cls, value: AnalyticsConfig, info: ValidationInfo) -> AnalyticsConfig:
        # Patrol windows, report days and rule schedules must agree on what "22:00" and "Monday" mean.
        instance = info.data.get("instance")
        if isinstance(instance, InstanceConfig) and value.calendar.timezone != instance.timezone:
            raise ValueError(
                f"analytics.calendar.timezone {value.calendar.timezone!r} differs from instance.timezone "
                f"{instance.timezone!r}: local times are read in one timezone, set both to the same"
            )
        return value

    def models_dir(self) -> Path:
        """Where model files are: ``analytics.models_dir`` (relative to the data dir) or ``<data_dir>/models``."""
        configured = self.analytics.models_dir
        if configured is None:
            return (self.data_dir / "models").resolve()
        return (configured if configured.is_absolute() else self.data_dir / configured).resolve()

    def database_url(self) -> str:
        """The database URL: the configured one, the one in ``database_url_file``, or SQLite in the data dir."""
        if self.storage.database_url is not None:
            return self.storage.database_url.get_secret_value()
        if self.storage.database_url_file is not None:
            return self.storage.database_url_file.read_text(encoding="utf-8").strip()
        return default_database_url(self.data_dir.resolve())
