"""Users' SSH public keys, kept in the gateway's own database (SQLAlchemy).

One row per (user, key). A key is stored in its OpenSSH one-line form with its SHA256
fingerprint; the fingerprint is what the gateway compares when a client offers a key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import asyncssh
from sqlalchemy import Column, Float, Integer, String, Text, UniqueConstraint, create_engine, select
from sqlalchemy.orm import declarative_base, sessionmaker

#: Key types the gateway accepts (DSA and certificates are refused: OpenSSH dropped DSA).
ALLOWED_ALGORITHMS = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
MAX_TITLE = 100

Base = declarative_base()


class KeyError_(ValueError):
    """A key (or its title) is not acceptable; the message says why."""


class SSHKeyRow(Base):
    __tablename__ = "ssh_keys"
    __table_args__ = (UniqueConstraint("user", "fingerprint", name="one_key_once_per_user"),)
    id = Column(Integer, primary_key=True)
    user = Column(String(255), nullable=False, index=True)
    fingerprint = Column(String(100), nullable=False)
    algorithm = Column(String(64), nullable=False)
    public_key = Column(Text, nullable=False)
    title = Column(String(MAX_TITLE), nullable=False, default="")
    added_by = Column(String(255), nullable=False)
    created = Column(Float, nullable=False)
    last_used = Column(Float, nullable=True)


@dataclass(frozen=True)
class StoredKey:
    id: int
    user: str
    fingerprint: str
    algorithm: str
    public_key: str
    title: str
    added_by: str
    created: float
    last_used: float | None

    def to_json(self) -> dict:
        return dict(self.__dict__)


def _stored(row: SSHKeyRow) -> StoredKey:
    return StoredKey(
        id=row.id,
        user=row.user,
        fingerprint=row.fingerprint,
        algorithm=row.algorithm,
        public_key=row.public_key,
        title=row.title,
        added_by=row.added_by,
        created=row.created,
        last_used=row.last_used,
    )


def parse_public_key(text: str) -> tuple[asyncssh.SSHKey, str]:
    """An OpenSSH public key line -> (key, comment). Raises :class:`KeyError_` with the reason."""
    text = (text or "").strip()
    if not text:
        raise KeyError_("key: paste one public key, e.g. the contents of ~/.ssh/id_ed25519.pub")
    if "PRIVATE KEY" in text:
        raise KeyError_("key: this is a PRIVATE key; never share it. Paste the .pub file instead")
    if "\n" in text:
        raise KeyError_("key: one key per request (found several lines)")
    try:
        key = asyncssh.import_public_key(text)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise KeyError_(f"key: not an OpenSSH public key ({exc})") from None
    algorithm = key.get_algorithm()
    if algorithm not in ALLOWED_ALGORITHMS:
        raise KeyError_(
            f"key: type {algorithm} is not accepted; use one of {', '.join(ALLOWED_ALGORITHMS[:5])}"
        )
    if algorithm == "ssh-rsa" and key.pyca_key.key_size < 2048:
        raise KeyError_(f"key: RSA keys need at least 2048 bits (this one has {key.pyca_key.key_size})")
    parts = text.split(None, 2)
    return key, parts[2] if len(parts) > 2 else ""


class KeyStore:
    """Add, list, find and delete users' keys. Thread-compatible; calls are short."""

    def __init__(self, db_url: str):
        self.engine = create_engine(db_url, future=True)
        Base.metadata.create_all(self.engine)
        self.Session = sessionmaker(self.engine, expire_on_commit=False)

    def add(self, user: str, text: str, title: str = "", added_by: str = "") -> StoredKey:
        key, comment = parse_public_key(text)
        title = (title or comment or "").strip()
        if len(title) > MAX_TITLE:
            raise KeyError_(f"title: at most {MAX_TITLE} characters (got {len(title)})")
        fingerprint = key.get_fingerprint("sha256")
        with self.Session() as db:
            if db.scalar(
                select(SSHKeyRow).where(SSHKeyRow.user == user, SSHKeyRow.fingerprint == fingerprint)
            ):
                raise KeyExists(f"key: {fingerprint} is already registered for {user}")
            row = SSHKeyRow(
                user=user,
                fingerprint=fingerprint,
                algorithm=key.get_algorithm(),
                public_key=key.export_public_key("openssh").decode().strip(),
                title=title,
                added_by=added_by or user,
                created=time.time(),
            )
            db.add(row)
            db.commit()
            return _stored(row)

    def list(self, user: str | None = None) -> list[StoredKey]:
        with self.Session() as db:
            query = select(SSHKeyRow).order_by(SSHKeyRow.user, SSHKeyRow.id)
            if user is not None:
                query = query.where(SSHKeyRow.user == user)
            return [_stored(row) for row in db.scalars(query)]

    def get(self, key_id: int) -> StoredKey | None:
        with self.Session() as db:
            row = db.get(SSHKeyRow, key_id)
            return _stored(row) if row else None

    def delete(self, key_id: int) -> bool:
        with self.Session() as db:
            row = db.get(SSHKeyRow, key_id)
            if row is None:
                return False
            db.delete(row)
            db.commit()
            return True

    def find(self, user: str, key: asyncssh.SSHKey) -> StoredKey | None:
        """The stored key of *user* matching *key*, or None (and records when it was used)."""
        fingerprint = key.get_fingerprint("sha256")
        with self.Session() as db:
            row = db.scalar(
                select(SSHKeyRow).where(SSHKeyRow.user == user, SSHKeyRow.fingerprint == fingerprint)
            )
            if row is None:
                return None
            row.last_used = time.time()
            db.commit()
            return _stored(row)


class KeyExists(KeyError_):
    """The same key is already registered for that user."""
