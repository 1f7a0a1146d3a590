"""The real OpenSSH client as tests use it (shared with the soak: devtools.openssh)."""

from devtools.openssh import SSH_OPTS, keygen

__all__ = ["SSH_OPTS", "keygen"]
