"""Write tests/data/ml-hub-db.sql: the database of an ML Hub install, made by the real
JupyterHub 1.5.1 (the last 1.x; every 1.x has the same schema, alembic 4dc2d5a8c53c) plus the
``users_info`` table of ML Hub's NativeAuthenticator fork (ml-tooling/nativeauthenticator
9859a69, the commit ML Hub's Dockerfile installs).

Run it with a JupyterHub 1.x environment (not MLHub's), e.g.:

    python3 -m venv /tmp/jh1 && /tmp/jh1/bin/pip install jupyterhub==1.5.1 'sqlalchemy<1.5' bcrypt
    /tmp/jh1/bin/python devtools/make_ml_hub_db.py tests/data/ml-hub-db.sql

Accounts: ``admin`` (admin, password ``ml-hub-admin-pw``) and ``alice`` (password
``alice-old-pw``, a named server ``gpu`` that was running, an API token), as ML Hub's sign-up
made them.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import bcrypt
import jupyterhub
from jupyterhub import orm
from sqlalchemy import Boolean, Column, Integer, LargeBinary, String

assert jupyterhub.version_info[0] == 1, f"needs JupyterHub 1.x, not {jupyterhub.__version__}"


class UserInfo(orm.Base):
    """ML Hub's NativeAuthenticator fork's table, as its model declared it."""

    __tablename__ = "users_info"
    id = Column(Integer, primary_key=True, autoincrement=True)
    username = Column(String, nullable=False)
    password = Column(LargeBinary, nullable=False)
    is_authorized = Column(Boolean, default=False)
    email = Column(String)
    has_2fa = Column(Boolean, default=False)
    otp_secret = Column(String(16))


def main(out: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "jupyterhub.sqlite"
        db = orm.new_session_factory(f"sqlite:///{path}")()
        when = datetime(2020, 6, 1, 12, 0, 0)
        for name, admin, password in (("admin", True, "ml-hub-admin-pw"), ("alice", False, "alice-old-pw")):
            user = orm.User(name=name, admin=admin, created=when, last_activity=when)
            db.add(user)
            db.add(
                UserInfo(
                    username=name,
                    password=bcrypt.hashpw(password.encode(), bcrypt.gensalt()),
                    is_authorized=True,
                    has_2fa=False,
                    otp_secret="JBSWY3DPEHPK3PXP",
                )
            )
        db.commit()
        alice = db.query(orm.User).filter_by(name="alice").one()
        # a named server as ML Hub's MLHubDockerSpawner left it (its state: DockerSpawner's)
        spawner = orm.Spawner(user=alice, name="gpu", started=when, last_activity=when)
        spawner.state = {"container_id": "0" * 64, "object_name": "ws-alice-mlhubgpu"}
        spawner.user_options = {
            "image": "mltooling/ml-workspace:0.8.7",
            "cpu_limit": "2",
            "days_to_live": "3",
        }
        db.add(spawner)
        db.commit()
        alice.new_api_token(note="a script of alice's")  # JupyterHub 2's upgrade drops tokens
        db.close()
        dump = "\n".join(sqlite3.connect(path).iterdump())
    Path(out).write_text(
        f"-- ML Hub's database: JupyterHub {jupyterhub.__version__} + ML Hub's NativeAuthenticator fork.\n"
        f"-- Made by devtools/make_ml_hub_db.py; load with sqlite3's executescript.\n{dump}\n"
    )
    print(json.dumps({"written": out, "jupyterhub": jupyterhub.__version__}))


if __name__ == "__main__":
    main(sys.argv[1])
