"""``campuswatch user``: create, list and reset passwords against a real database in a data dir."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from campuswatch.cli import main
from kernel.db import make_engine, make_session_factory, session_scope
from web.auth import authenticate
from web.models import Role, User


def _run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), input=stdin)
    return result.exit_code, result.output


def test_create_list_and_reset(tmp_path: Path) -> None:
    data = str(tmp_path)
    code, out = _run("user", "create", "wang", "--role", "inspector", "--name", "王督学", "--data-dir", data)
    assert code == 0, out
    password = out.split("password: ")[1].strip()
    assert len(password) == 12
    code, out = _run("user", "create", "li", "--password-stdin", "--data-dir", data, stdin="correct horse\n")
    assert code == 0 and "password:" not in out
    code, out = _run("user", "list", "--data-dir", data)
    assert out.splitlines() == ["li\tduty_officer\t", "wang\tinspector\t王督学"]

    engine = make_engine(f"sqlite:///{tmp_path / 'campuswatch.db'}")
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        user = authenticate(session, "wang", password)
        assert user is not None and user.role is Role.INSPECTOR
        assert authenticate(session, "li", "correct horse") is not None

    code, out = _run("user", "set-password", "wang", "--data-dir", data)
    assert code == 0
    new_password = out.split("password: ")[1].strip()
    with session_scope(factory) as session:
        assert authenticate(session, "wang", password) is None
        assert authenticate(session, "wang", new_password) is not None
    engine.dispose()


def test_clear_errors(tmp_path: Path) -> None:
    data = str(tmp_path)
    assert _run("user", "create", "wang", "--data-dir", data)[0] == 0
    code, out = _run("user", "create", "wang", "--data-dir", data)
    assert code == 1 and "user 'wang' already exists" in out
    code, out = _run("user", "set-password", "nobody", "--data-dir", data)
    assert code == 1 and "no user 'nobody'" in out
    code, out = _run("user", "create", "zhao", "--password-stdin", "--data-dir", data, stdin="short\n")
    assert code == 1 and "at least 8 characters" in out
    code, out = _run("user", "create", "zhao", "--role", "emperor", "--data-dir", data)
    assert code == 2 and "'emperor' is not one of" in out
    engine = make_engine(f"sqlite:///{tmp_path / 'campuswatch.db'}")
    with session_scope(make_session_factory(engine)) as session:
        assert session.scalars(select(User.username)).all() == ["wang"]
    engine.dispose()
