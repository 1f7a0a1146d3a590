"""The commands the gateway runs inside a workspace: shell, command, sftp-server, port relay.

They need only ``/bin/sh`` (and Python for the port relay, which every image that runs
``jupyterhub-singleuser`` has), so any workspace image works, not only MLHub's.
"""

from __future__ import annotations

#: The user's shell: from passwd, else $SHELL, else /bin/sh (like sshd, without a login
#: shell's /etc/profile, which would reset the image's PATH).
_PICK_SHELL = (
    's=$(getent passwd "$(id -un 2>/dev/null)" 2>/dev/null | cut -d: -f7); '
    '[ -n "$s" ] && [ -x "$s" ] || s=${SHELL:-/bin/sh}; [ -x "$s" ] || s=/bin/sh; '
)


def shell_command() -> list[str]:
    return ["/bin/sh", "-c", _PICK_SHELL + 'exec "$s"']


def exec_command(command: str) -> list[str]:
    return ["/bin/sh", "-c", _PICK_SHELL + 'exec "$s" -c "$1"', "sh", command]


#: Where images keep OpenSSH's sftp-server; the gateway's own copy goes to INJECTED_SFTP.
SFTP_SERVER_PATHS = (
    "/usr/lib/openssh/sftp-server",
    "/usr/libexec/openssh/sftp-server",
    "/usr/lib/ssh/sftp-server",
    "/usr/libexec/sftp-server",
    "/usr/lib/sftp-server",
)
INJECTED_SFTP = "/tmp/.mlhub-sftp-server"


def find_sftp_server_command() -> list[str]:
    paths = " ".join((*SFTP_SERVER_PATHS, INJECTED_SFTP))
    return ["/bin/sh", "-c", f'for p in {paths}; do if [ -x "$p" ]; then echo "$p"; exit 0; fi; done; exit 1']


#: Connects to 127.0.0.1:<port> inside the workspace and relays stdin/stdout. Says "ok" (or
#: why not) on stderr first, so the gateway knows before it accepts the tunnel.
RELAY_CODE = r"""
import os, socket, sys, threading
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
except OSError as e:
    sys.stderr.write("refused: %s\n" % e); sys.exit(1)
s.settimeout(None)
sys.stderr.write("ok\n"); sys.stderr.flush()
def up():
    while True:
        d = os.read(0, 65536)
        if not d:
            break
        s.sendall(d)
    try:
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass
threading.Thread(target=up, daemon=True).start()
out = sys.stdout.buffer
while True:
    d = s.recv(65536)
    if not d:
        break
    out.write(d); out.flush()
"""


def relay_command(port: int) -> list[str]:
    return [
        "/bin/sh",
        "-c",
        'p=$(command -v python3 || command -v python) || { echo "no python in the workspace" >&2; exit 1; }; '
        'exec "$p" -u -c "$1" "$2"',
        "sh",
        RELAY_CODE,
        str(int(port)),
    ]
