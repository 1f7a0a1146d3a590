"""A real OpenLDAP server (Debian's ``slapd``) for login tests: its own config, database and
port in a temporary directory, entries loaded with ``ldapadd``; no system service."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devtools.hubprocess import free_port, stop_process_group

SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "slapd-root-pw"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"

_CONFIG = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
pidfile {dir}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
{tls}
database mdb
maxsize 10485760
suffix "{suffix}"
rootdn "{root_dn}"
rootpw {root_password}
directory {dir}/db
access to attrs=userPassword by anonymous auth by self write by * none
access to * by users read by * none
"""


def available() -> str | None:
    """Why slapd tests cannot run here, or None."""
    missing = [
        tool
        for tool in ("slapd", "ldapadd")
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists()
    ]
    if missing:
        return (
            f"{' and '.join(missing)} not installed (scripts/setup.sh --test installs slapd and ldap-utils)"
        )
    return None


@dataclass
class Slapd:
    host: str
    port: int
    workdir: Path

    @property
    def uri(self) -> str:
        return f"ldap://{self.host}:{self.port}"

    def add(self, ldif: str) -> None:
        subprocess.run(
            ["ldapadd", "-x", "-H", self.uri, "-D", ROOT_DN, "-w", ROOT_PASSWORD],
            input=ldif.encode(),
            check=True,
            capture_output=True,
        )

    def add_user(self, uid: str, password: str) -> str:
        dn = f"uid={uid},{PEOPLE}"
        self.add(
            f"dn: {dn}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\nuserPassword: {password}\n"
        )
        return dn

    def add_group(self, cn: str, members: list[str]) -> str:
        dn = f"cn={cn},{GROUPS}"
        self.add(
            f"dn: {dn}\nobjectClass: groupOfNames\ncn: {cn}\n" + "".join(f"member: {m}\n" for m in members)
        )
        return dn


@contextmanager
def running_slapd(
    workdir: Path, tls_cert: Path | None = None, tls_key: Path | None = None, host: str = "127.0.0.1"
) -> Iterator[Slapd]:
    """slapd on a free port of *host* (loopback by default), with ``ou=people`` and ``ou=groups`` under ``dc=example,dc=org``
    (STARTTLS offered when a certificate and key are given)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "db").mkdir(exist_ok=True)
    tls = f"TLSCertificateFile {tls_cert}\nTLSCertificateKeyFile {tls_key}" if tls_cert and tls_key else ""
    config = workdir / "slapd.conf"
    config.write_text(
        _CONFIG.format(dir=workdir, tls=tls, suffix=SUFFIX, root_dn=ROOT_DN, root_password=ROOT_PASSWORD)
    )
    port = free_port()
    server = Slapd(host, port, workdir)
    log = open(workdir / "slapd.log", "ab")
    slapd = shutil.which("slapd") or "/usr/sbin/slapd"
    # -d: stay in the foreground (this process is the server), log connections and operations
    proc = subprocess.Popen(
        [slapd, "-f", str(config), "-h", f"{server.uri}/", "-d", "256"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"slapd exited with {proc.returncode}:\n{(workdir / 'slapd.log').read_text()}"
                )
            probe = subprocess.run(
                [
                    "ldapsearch",
                    "-x",
                    "-H",
                    server.uri,
                    "-D",
                    ROOT_DN,
                    "-w",
                    ROOT_PASSWORD,
                    "-b",
                    "",
                    "-s",
                    "base",
                ],
                capture_output=True,
            )
            if probe.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"slapd did not answer:\n{(workdir / 'slapd.log').read_text()}")
            time.sleep(0.2)
        server.add(
            f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n"
            f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n"
            f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n"
        )
        yield server
    finally:
        stop_process_group(proc)
        log.close()


def make_certificates(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """A CA and a server certificate it signed for *host* (IP or DNS name); returns
    (CA certificate, server certificate, server key), PEM files made with openssl."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (
        directory / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem")
    )
    san = f"IP:{host}" if host.replace(".", "").isdigit() else f"DNS:{host}"
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: E731
    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
        "-days",
        "2",
        "-subj",
        "/CN=MLHub test LDAP CA",
    )
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={host}")
    ext = directory / "san.ext"
    ext.write_text(f"subjectAltName={san}\n")
    run(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(cert),
        "-days",
        "2",
        "-extfile",
        str(ext),
    )
    return ca, cert, key
