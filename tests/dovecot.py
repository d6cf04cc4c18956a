"""A real IMAP server for tests: Debian's Dovecot on 127.0.0.1 with a throw-away config and a passwd-file user.

It listens for IMAPS (implicit TLS) and IMAP (STARTTLS) on free ports with a self-signed certificate
made by openssl for 127.0.0.1; clients trust it through SSL_CERT_FILE (OpenSSL reads the variable
when a default context loads its certificates). Mail lives in a Maildir under a temporary folder.
Run as root, the mail processes run as Debian's `dovecot` user (so the folder is made readable);
otherwise everything runs as the current user. Nothing outside the temporary folder is touched.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

from imapclient import IMAPClient

from .smtpd import free_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
MISSING = (
    ""
    if Path(DOVECOT).is_file() and Path("/usr/lib/dovecot/imap").is_file() and Path(OPENSSL).is_file()
    else "dovecot-imapd (or openssl) is not installed: apt-get install dovecot-imapd openssl (.ci/run does)"
)

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {login_user}
default_internal_user = {internal_user}
mail_location = maildir:{root}/mail/%u
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"""


class Dovecot:
    """`with Dovecot() as server:` a running server; `server.env()` points newsletter at its IMAPS port."""

    user = "bounces"
    password = "imap-secret-0123"

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="nl-dovecot-"))
        self.imap_port = free_port()
        self.imaps_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def cert(self) -> Path:
        return self.root / "cert.pem"

    def _identity(self) -> tuple[str, str, int, int]:
        """(login user, internal user, mail uid, mail gid)."""
        if os.geteuid() == 0:
            mail = pwd.getpwnam("dovecot")
            return "dovenull", "dovecot", mail.pw_uid, mail.pw_gid
        me = pwd.getpwuid(os.geteuid())
        return me.pw_name, me.pw_name, me.pw_uid, me.pw_gid

    def __enter__(self) -> Dovecot:
        root = self.root
        root.chmod(0o755)  # the mail processes run as another user when we are root
        subprocess.run(
            [OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
             "-keyout", str(root / "key.pem"), "-out", str(self.cert)],
            check=True, capture_output=True,
        )  # fmt: skip
        (root / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}::::::\n", encoding="utf-8")
        login_user, internal_user, uid, gid = self._identity()
        for sub in ("run", "state", "mail"):
            (root / sub).mkdir()
        os.chown(root / "mail", uid, gid)
        (root / "dovecot.conf").write_text(
            CONFIG.format(
                root=root, login_user=login_user, internal_user=internal_user, uid=uid, gid=gid,
                imap_port=self.imap_port, imaps_port=self.imaps_port,
            ),
            encoding="utf-8",
        )  # fmt: skip
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(root / "dovecot.conf")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 15
        while not self._listening():
            if self.process.poll() is not None or time.monotonic() > deadline:
                output = self.process.stdout.read().decode(errors="replace") if self.process.stdout else ""
                self.__exit__()
                raise RuntimeError(f"dovecot did not start: {output.strip()} {self.log()}")
            time.sleep(0.05)
        return self

    def _listening(self) -> bool:
        for port in (self.imap_port, self.imaps_port):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            except OSError:
                return False
        return True

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def env(self, security: str = "tls") -> dict[str, str]:
        """Environment that points newsletter at this server's mailbox (TLS verified against our certificate)."""
        return {
            "NEWSLETTER_BOUNCES_IMAP_HOST": "127.0.0.1",
            "NEWSLETTER_BOUNCES_IMAP_PORT": str(self.imaps_port if security == "tls" else self.imap_port),
            "NEWSLETTER_BOUNCES_IMAP_SECURITY": security,
            "NEWSLETTER_BOUNCES_IMAP_USER": self.user,
            "NEWSLETTER_BOUNCES_PASSWORD": self.password,
            "SSL_CERT_FILE": str(self.cert),
        }

    def client(self) -> IMAPClient:
        context = ssl.create_default_context(cafile=str(self.cert))
        client = IMAPClient("127.0.0.1", port=self.imaps_port, ssl=True, ssl_context=context, timeout=10)
        client.login(self.user, self.password)
        return client

    def deliver(self, *messages: bytes, folder: str = "INBOX") -> None:
        """Put messages into a folder (IMAP APPEND: what a delivery agent does, through the server)."""
        client = self.client()
        try:
            for data in messages:
                client.append(folder, data)
        finally:
            client.logout()

    def count(self, folder: str) -> int:
        client = self.client()
        try:
            if not client.folder_exists(folder):
                return 0
            return int(client.folder_status(folder, ["MESSAGES"])[b"MESSAGES"])
        finally:
            client.logout()
