"""campuswatch configuration: the pydantic schema, the YAML loader and the example files."""

from config.loader import ConfigError, load_settings
from config.schema import Settings

__all__ = ["ConfigError", "Settings", "load_settings"]
