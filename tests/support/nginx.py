"""Debian's nginx with the shipped site file (systemd/nginx/posko-hub.conf) on free loopback
ports, without root's own nginx configuration: the test's folder holds a small main file
(Debian's, worker_connections raised as setup.sh does), the pid and the temp folders."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

from posko.broker import wait_for_port

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "systemd" / "nginx" / "posko-hub.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def make_cert(folder: Path) -> tuple[Path, Path]:
    """A self-made certificate for localhost and 127.0.0.1 (as ./setup.sh hub makes one)."""
    crt, key = folder / "hub.crt", folder / "hub.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)
    return crt, key


def spki_hash(crt: Path) -> str:
    """base64 SHA-256 of the certificate's public key: Chromium's
    --ignore-certificate-errors-spki-list then trusts it as if a CA had signed it."""
    pub = subprocess.run(["openssl", "x509", "-in", str(crt), "-noout", "-pubkey"],
                         check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub,
                         check=True, capture_output=True).stdout
    digest = subprocess.run(["openssl", "dgst", "-sha256", "-binary"], input=der,
                            check=True, capture_output=True).stdout
    return base64.b64encode(digest).decode()


def site_for_test(intake_port: int, streams_port: int, http_port: int, https_port: int,
                  crt: Path, key: Path, mqtt_ws_port: int = 0) -> str:
    """The shipped site file with only ports and certificate paths changed."""
    text = SITE.read_text()
    text = text.replace("server 127.0.0.1:18080;", f"server 127.0.0.1:{intake_port};")
    text = text.replace("server 127.0.0.1:18082;", f"server 127.0.0.1:{streams_port};")
    if mqtt_ws_port:
        text = text.replace("server 127.0.0.1:8080;", f"server 127.0.0.1:{mqtt_ws_port};")
    text = re.sub(r"^\s*listen \[::\]:.*$", "", text, flags=re.M)
    text = text.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    text = text.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    text = text.replace("/etc/posko/tls/hub.crt", str(crt)).replace("/etc/posko/tls/hub.key", str(key))
    return text.replace("SERVER_NAME", "localhost")


class Nginx:
    """One nginx in the foreground, stopped by its own pid."""

    def __init__(self, folder: Path, site: str) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "site.conf").write_text(site)
        # The main file setup.sh leaves in place is Debian's, with worker_connections raised
        # to 4096; `user root` only because the test's folders are root's 0700 temp folders.
        (folder / "nginx.conf").write_text(f"""
user root;
worker_processes 2;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    include {folder}/site.conf;
}}
""")
        self.proc: subprocess.Popen | None = None

    def start(self, port: int) -> Nginx:
        check = subprocess.run([NGINX, "-t", "-p", str(self.folder), "-c", str(self.folder / "nginx.conf")],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen([NGINX, "-p", str(self.folder), "-c", str(self.folder / "nginx.conf"),
                                      "-g", "daemon off;"], stderr=subprocess.DEVNULL)
        wait_for_port(port, timeout_s=10, proc=self.proc)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
