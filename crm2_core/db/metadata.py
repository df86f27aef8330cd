"""The one shared metadata, with constraint names set before any model exists."""

from __future__ import annotations

from sqlmodel import SQLModel

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Every plugin shares SQLModel.metadata (a foreign key into another metadata
# fails), so the convention is installed on it the moment the core is imported.
metadata = SQLModel.metadata
metadata.naming_convention = NAMING_CONVENTION

# A table model's pydantic validator and serializer are built when it is first validated or
# dumped, not when its class is defined: a serving process answers with its routes' own
# response models and seldom validates a table model, so building them all at start-up was
# time spent before the first request for nothing. Set here, before any model exists, so
# every plugin's tables inherit it.
SQLModel.model_config["defer_build"] = True
