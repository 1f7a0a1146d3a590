"""Bring the sign-up table of an ML Hub database up to the NativeAuthenticator MLHub runs.

ML Hub used a fork of NativeAuthenticator whose ``users_info`` table lacks columns the current
NativeAuthenticator reads (``login_email_sent``); a hub started on it fails at the first login
with ``no such column: users_info.login_email_sent``. Run once, after ``jupyterhub upgrade-db``
(docs/migrating-from-ml-hub.md):

    python -m mlhub.hub.ml_hub_db sqlite:////data/jupyterhub.sqlite

Adds the missing columns (with NativeAuthenticator's defaults), changes nothing else, and
does nothing on a database that has them (or has no ``users_info`` table).
"""

from __future__ import annotations

import sys

from nativeauthenticator.orm import UserInfo
from sqlalchemy import create_engine, inspect, text


def missing_columns(db_url: str) -> list[str]:
    """The ``users_info`` columns NativeAuthenticator declares that the database lacks."""
    engine = create_engine(db_url)
    try:
        inspector = inspect(engine)
        if "users_info" not in inspector.get_table_names():
            return []
        present = {column["name"] for column in inspector.get_columns("users_info")}
        return [c.name for c in UserInfo.__table__.columns if c.name not in present]
    finally:
        engine.dispose()


def add_missing_columns(db_url: str) -> list[str]:
    """Add them (nullable, with the model's default for booleans); return their names."""
    names = missing_columns(db_url)
    if not names:
        return []
    engine = create_engine(db_url)
    try:
        with engine.begin() as connection:
            for name in names:
                column = UserInfo.__table__.columns[name]
                sql_type = column.type.compile(dialect=engine.dialect)
                default = column.default.arg if column.default is not None else None
                clause = f" DEFAULT {'true' if default else 'false'}" if isinstance(default, bool) else ""
                connection.execute(text(f"ALTER TABLE users_info ADD COLUMN {name} {sql_type}{clause}"))
    finally:
        engine.dispose()
    return names


def main(argv: list[str]) -> int:
    if len(argv) != 1 or "://" not in argv[0]:
        print("usage: python -m mlhub.hub.ml_hub_db <database URL, e.g. sqlite:////data/jupyterhub.sqlite>")
        return 2
    added = add_missing_columns(argv[0])
    if added:
        print(f"users_info: added column(s) {', '.join(added)} (ML Hub's NativeAuthenticator fork had none)")
    else:
        print("users_info: nothing to add")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
