"""The simulator's HTTPS server: identity, admin (BAP), Dataverse and flow APIs on one port.

One ASGI application (`auditor.sim.app`) serves every API of the simulated tenant under its
own path prefix, each API in its own module of `auditor.sim.apis`:

- `/{tenant}/...`: OIDC discovery and the v2.0 token endpoint (`apis.identity`);
- `/bap/providers/Microsoft.BusinessAppPlatform/scopes/admin/environments`: environments
  (`apis.environments`);
- `/dv/{slug}/api/data/v9.2/{entityset}`: Dataverse (`apis.dataverse`);
- `/flow/providers/Microsoft.ProcessSimple/environments/{env}/flows/...`: flow API, maker
  routes; `/flow/providers/Microsoft.ProcessSimple/scopes/admin/environments/{env}/v2/flows`
  and `.../scopes/admin/environments/{env}/flows/{flow}[/runs[/{run}]]`: admin routes
  (`apis.flows`, `apis.flow_runs`).

API requests pass the gate a real tenant applies (`apis.gate`) first. The server runs uvicorn
in a background thread on a socket bound before start, with a TLS certificate from a CA made
at start (trustme), so clients trust `ca_pem` and nothing else.
"""

from __future__ import annotations

import json
import logging
import shlex
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

import trustme
import uvicorn

from auditor.files import private_dir, write_bytes, write_text
from auditor.sim.apis.common import RenderActions
from auditor.sim.app import SimApp, SimulatedReset
from auditor.sim.faults import SimStats
from auditor.sim.model import SimOptions, SimTenant

__all__ = ["RenderActions", "SimApp", "SimServer", "SimulatedReset"]


class _ResetLogFilter(logging.Filter):
    """Keeps uvicorn from logging a stack trace for every connection reset on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], SimulatedReset))


class SimServer:
    """A running simulated tenant: HTTPS on loopback, background thread, its own CA."""

    def __init__(
        self,
        tenant: SimTenant,
        options: SimOptions,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        render_actions: RenderActions | None = None,
    ) -> None:
        self.tenant = tenant
        self.options = options
        self.host = host
        self.port = port
        self.base_url = ""
        self.ca_pem = b""
        self.stats = SimStats()
        self.issued_tokens: list[str] = []
        self.app: SimApp | None = None
        self._render_actions = render_actions
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._tls_dir: Path | None = None
        self._log_filter = _ResetLogFilter()

    def start(self) -> str:
        """Bind, make the CA and certificate, start uvicorn; return the base URL when ready."""
        if self._thread is not None:
            return self.base_url
        # proto=IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted connections (else Nagle
        # plus delayed ACK adds 40 ms to every response written in two parts).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        self._socket = sock
        self.port = sock.getsockname()[1]
        self.base_url = f"https://{self.host}:{self.port}"
        ca = trustme.CA(organization_name="auditor simulated tenant")
        names = sorted({self.host, "127.0.0.1", "localhost"})
        cert = ca.issue_cert(*names)
        self.ca_pem = ca.cert_pem.bytes()
        self._tls_dir = Path(tempfile.mkdtemp(prefix="auditor-sim-tls-"))
        key_path, cert_path = self._tls_dir / "key.pem", self._tls_dir / "cert.pem"
        write_bytes(key_path, cert.private_key_pem.bytes())  # owner-only from the start
        write_bytes(cert_path, b"".join(blob.bytes() for blob in cert.cert_chain_pems))
        self.app = SimApp(
            self.tenant,
            self.options,
            self.base_url,
            self.stats,
            self.issued_tokens,
            self._render_actions,
        )
        config = uvicorn.Config(
            self.app,
            ssl_certfile=str(cert_path),
            ssl_keyfile=str(key_path),
            log_config=None,
            log_level="warning",
            access_log=False,  # access logs could carry query strings; tokens are in headers
            lifespan="off",
            ws="none",
            http="httptools",
            timeout_graceful_shutdown=1,
            date_header=False,  # SimApp sends the simulated clock's date
            server_header=False,
        )
        logging.getLogger("uvicorn.error").addFilter(self._log_filter)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="auditor-sim", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 15.0
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the simulator did not start")
            time.sleep(0.01)
        return self.base_url

    def stop(self) -> None:
        """Stop serving, close the socket and delete the TLS key files."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout=5.0)
        if self._socket is not None:
            self._socket.close()
        if self._tls_dir is not None:
            shutil.rmtree(self._tls_dir, ignore_errors=True)
        logging.getLogger("uvicorn.error").removeFilter(self._log_filter)
        self._server = self._thread = self._socket = self._tls_dir = None

    def __enter__(self) -> SimServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def write_client_files(self, directory: Path) -> None:
        """Write `ca.pem`, `env` (the secret and the CA path) and `auditor.toml`, owner-only
        and atomically (`auditor.files`); a link or a file at `directory` is refused."""
        if not self.base_url:
            raise RuntimeError("start the server before writing client files")
        # Absolute, not resolved: a link at `directory` is refused, not followed.
        directory = private_dir(Path(directory).absolute())
        ca_path = directory / "ca.pem"
        write_bytes(ca_path, self.ca_pem)
        write_text(
            directory / "env",
            f"AZURE_CLIENT_SECRET={shlex.quote(self.tenant.client_secret)}\n"
            f"SSL_CERT_FILE={shlex.quote(str(ca_path))}\n",
        )
        toml = (
            f"# Written by `auditor sim serve`: the simulated tenant at {self.base_url}.\n"
            f"tenant_id = {_toml_string(self.tenant.tenant_id)}\n"
            'environments = "all"\n'
            "\n"
            "[auth]\n"
            'method = "client-secret"\n'
            f"client_id = {_toml_string(self.tenant.client_id)}\n"
            f"authority_host = {_toml_string(self.base_url)}\n"
            "\n"
            "[apis]\n"
            f"admin_url = {_toml_string(self.base_url + '/bap')}\n"
            f"flow_url = {_toml_string(self.base_url + '/flow')}\n"
            "\n"
            "[http]\n"
            f"ca_bundle = {_toml_string(str(ca_path))}\n"
            "# This tenant's service protection, as `auditor sim serve` was started.\n"
            f"requests_per_window = {self.options.max_requests}\n"
            f"request_window_seconds = {max(1.0, self.options.window_s)}\n"
        )
        write_text(directory / "auditor.toml", toml)


def _toml_string(value: str) -> str:
    # A TOML basic string; JSON's escapes (\" \\ \n \uXXXX) are valid TOML escapes.
    return json.dumps(value)
