"""Request dependencies shared by the routers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from config.schema import Settings
from kernel.announce import commit_and_publish
from kernel.bus import EventBus
from patrol.facts import FleetFacts


def get_session(request: Request) -> Iterator[Session]:
    """A database session for one request, closed afterwards (read-mostly: writers commit explicitly)."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    with factory() as session:
        yield session


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_bus(request: Request) -> EventBus:
    """The app's event bus."""
    bus: EventBus = request.app.state.bus
    return bus


def get_facts(request: Request) -> FleetFacts:
    """Camera health and analytics events, for the patrol."""
    facts: FleetFacts = request.app.state.facts
    return facts


def get_clock(request: Request) -> Callable[[], datetime]:
    """The app's clock (``kernel.clock.utcnow`` unless a test moved it)."""
    clock: Callable[[], datetime] = request.app.state.clock
    return clock


DbSession = Annotated[Session, Depends(get_session)]
AppSettings = Annotated[Settings, Depends(get_settings)]
AppBus = Annotated[EventBus, Depends(get_bus)]
AppFacts = Annotated[FleetFacts, Depends(get_facts)]
Clock = Annotated[Callable[[], datetime], Depends(get_clock)]


@dataclass
class Work:
    """A request's writes: its session, and a commit that then publishes what the transaction announced."""

    session: Session
    bus: EventBus

    def commit(self) -> None:
        """Commit, then publish the announced bus events."""
        commit_and_publish(self.session, self.bus)


def get_work(session: DbSession, bus: AppBus) -> Work:
    """The unit of work of one writing request."""
    return Work(session, bus)


UnitOfWork = Annotated[Work, Depends(get_work)]
