"""What routes depend on, declared once as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Request

from poise.settings import Settings

__all__ = ["ConnectionDep", "EngineDep", "SettingsDep"]


# Plain lookups, so async: a sync dependency would cost a hop to the thread pool.
async def _engine(request: Request) -> sa.Engine:
    engine: sa.Engine = request.app.state.engine
    return engine


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _connection(engine: Annotated[sa.Engine, Depends(_engine)]) -> Iterator[sa.Connection]:
    with engine.connect() as connection:
        yield connection


EngineDep = Annotated[sa.Engine, Depends(_engine)]
SettingsDep = Annotated[Settings, Depends(_settings)]
ConnectionDep = Annotated[sa.Connection, Depends(_connection)]
