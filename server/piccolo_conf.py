"""Piccolo's configuration. `DB` is replaced by server.db.configure() with the process's
engine, so migrations run on the database the server uses."""

from typing import Any

from piccolo.conf.apps import AppRegistry
from piccolo.engine.base import Engine

from server.db import make_engine
from server.settings import load_settings

DB: Engine[Any] = make_engine(load_settings().database)

APP_REGISTRY = AppRegistry(
    apps=[
        "server.auth.piccolo_app",
        "server.core.piccolo_app",
        "server.core.changelog.piccolo_app",
        "server.push.piccolo_app",
        "server.nearby.piccolo_app",
        "server.calendar.piccolo_app",
        "server.transfer.piccolo_app",
        "server.campaigns.piccolo_app",
        "server.attachments.piccolo_app",
        "server.merging.piccolo_app",
    ]
)
