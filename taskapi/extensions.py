"""Extension singletons; the application factory binds them with ``init_app``."""

from flask_jwt_extended import JWTManager
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names, so Alembic migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Objects stay usable after commit: views dump what they wrote without a re-SELECT.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
# Flask-Migrate is bound in taskapi.commands, for the command line only: it
# loads Alembic and Mako, which serving never uses (docs/performance.md).
jwt = JWTManager()
