"""Imports every package's tables so that ``Base.metadata`` is complete (for Alembic and tests)."""

from analytics import tables as analytics_tables
from ingest import tables as ingest_tables
from kernel.db import Base
from patrol import tables as patrol_tables
from registry import models as registry_models
from web import audit as web_audit
from web import models as web_models

__all__ = [
    "Base",
    "analytics_tables",
    "ingest_tables",
    "patrol_tables",
    "registry_models",
    "web_audit",
    "web_models",
]
