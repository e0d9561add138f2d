"""Load and validate a YAML configuration file, with errors that name the file, line and field path."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from config.schema import Settings
from kernel.secrets import redact_url

Location = tuple[str | int, ...]
_FILE_DATA: ContextVar[dict[str, Any]] = ContextVar("campuswatch_config_file_data", default={})  # noqa: B039
# Fields whose values are URLs that may hold a password: in a file they must not.
_URL_SECRET_FIELDS: tuple[Location, ...] = (("storage", "database_url"), ("bus", "url"))


class ConfigError(Exception):
    """A configuration file or environment variable is invalid; ``problems`` lists each finding."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: invalid configuration\n" + "\n".join(f"  {p}" for p in problems))


class _FileSource(PydanticBaseSettingsSource):
    """Settings source for the parsed YAML file, below the environment in precedence."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return _FILE_DATA.get().get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_FILE_DATA.get())


class _FileSettings(Settings):
    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileSource(settings_cls))


@contextmanager
def _file_data(data: dict[str, Any]) -> Iterator[None]:
    token = _FILE_DATA.set(data)
    try:
        yield
    finally:
        _FILE_DATA.reset(token)


def _line_map(node: yaml.Node, path: Location, lines: dict[Location, int], problems: list[str], name: str) -> None:
    """Record the 1-based line of every key/item under ``node``; report duplicate keys."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = (*path, key)
            if key in seen:
                problems.append(f"{name}:{key_node.start_mark.line + 1}: {_dotted(child)}: duplicate key")
            seen.add(key)
            lines[child] = key_node.start_mark.line + 1
            _line_map(value_node, child, lines, problems, name)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            _line_map(item, child, lines, problems, name)


def _dotted(loc: Location) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _env_name(loc: Location) -> str:
    return "CAMPUSWATCH_" + "__".join(str(p).upper() for p in loc if isinstance(p, str))


def parse_yaml(text: str, name: str) -> tuple[dict[str, Any], dict[Location, int]]:
    """Parse a YAML document into a mapping plus the line of every key; raise :class:`ConfigError`."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        raise ConfigError(name, [f"{where}: not valid YAML: {getattr(err, 'problem', None) or err}"]) from err
    if root is None:
        return {}, {}
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(name, [f"{name}:{root.start_mark.line + 1}: the file must be a mapping of sections"])
    lines: dict[Location, int] = {}
    problems: list[str] = []
    _line_map(root, (), lines, problems, name)
    if problems:
        raise ConfigError(name, problems)
    data = yaml.safe_load(text)
    return data, lines


def _secrets_in_file(data: dict[str, Any], lines: dict[Location, int], name: str) -> list[str]:
    problems = []
    for loc in _URL_SECRET_FIELDS:
        section = data.get(str(loc[0]))
        value = section.get(str(loc[1])) if isinstance(section, dict) else None
        if isinstance(value, str) and redact_url(value) != value:
            problems.append(
                f"{name}:{lines.get(loc, 0)}: {_dotted(loc)}: credentials must not be written in the file; "
                f"set {_env_name(loc)} in the environment instead"
            )
    return problems


def load_settings(path: Path | str | None = None, **overrides: Any) -> Settings:
    """Load the configuration from ``path`` (optional), the environment and ``overrides``.

    Raises :class:`ConfigError` whose problems read ``FILE:LINE: field.path: message``.
    """
    name = str(path) if path is not None else "(no file)"
    data: dict[str, Any] = {}
    lines: dict[Location, int] = {}
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(name, [f"{name}: cannot read: {err}"]) from err
        data, lines = parse_yaml(text, name)
        problems = _secrets_in_file(data, lines, name)
        if problems:
            raise ConfigError(name, problems)
    with _file_data(data):
        try:
            settings = _FileSettings(**overrides)
        except ValidationError as err:
            raise ConfigError(name, [_describe(e, lines, name) for e in err.errors()]) from err
    return settings


def _describe(error: Any, lines: dict[Location, int], name: str) -> str:
    loc: Location = tuple(error["loc"])
    message = str(error["msg"])
    # The nearest enclosing key that the file has (a missing field is reported at its section).
    for depth in range(len(loc), 0, -1):
        line = lines.get(loc[:depth])
        if line is not None:
            return f"{name}:{line}: {_dotted(loc)}: {message}"
    env = _env_name(loc)
    if any(k.upper().startswith(env) for k in os.environ):
        return f"environment {env}: {_dotted(loc)}: {message}"
    return f"{name}: {_dotted(loc)}: {message}"
