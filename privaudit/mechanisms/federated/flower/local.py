"""A deployment-runtime federation on this machine: SuperLink + one SuperNode per silo on
127.0.0.1, TLS on — the smoke test of :mod:`.deploy` and the docs' first step.

:func:`make_certificates` writes a throw-away CA and a server certificate for 127.0.0.1
(never use them beyond a loopback test); :class:`LocalDeployment` starts the processes in
their own process groups, runs ``flwr run`` against them and always stops them (SIGTERM,
then SIGKILL) — also when the run fails or times out.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from privaudit.core.errors import InternalError
from privaudit.mechanisms.federated.flower.deploy import JOB_KEY, SILO_KEY


@dataclass(frozen=True)
class Certificates:
    ca: Path
    cert: Path
    key: Path


def make_certificates(directory: Path, host: str = "127.0.0.1") -> Certificates:
    """A CA and a server certificate (SAN: ``host``, localhost), ECDSA P-256, one day."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "privaudit loopback CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]
        ), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    out = Certificates(directory / "ca.crt", directory / "server.pem", directory / "server.key")
    out.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out.key.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    out.key.chmod(0o600)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, deadline: float, proc: subprocess.Popen[bytes]) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise InternalError(f"SuperLink exited with {proc.returncode} before listening")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise InternalError(f"SuperLink did not listen on 127.0.0.1:{port} in time")


@dataclass
class LocalDeployment:
    """SuperLink + one SuperNode per ``silos`` entry, TLS, ports on 127.0.0.1."""

    job: Path
    silos: list[Path]
    workdir: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    port: int = 0

    def __enter__(self) -> LocalDeployment:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def env(self) -> dict[str, str]:
        bin_dir = str(Path(sys.executable).parent)
        return os.environ | {
            "FLWR_HOME": str(self.workdir / "flwr-home"),
            "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
            "FLWR_TELEMETRY_ENABLED": "0",
        }

    def _spawn(self, args: list[str], log: str) -> subprocess.Popen[bytes]:
        with (self.workdir / log).open("wb") as out:
            proc = subprocess.Popen(
                args, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() reaps its children
            )
        self.processes.append(proc)
        return proc

    def start(self, timeout: float = 60.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        certs = make_certificates(self.workdir / "certificates")
        self.port = free_port()
        bin_dir = Path(sys.executable).parent
        link = self._spawn([
            str(bin_dir / "flower-superlink"),
            "--ssl-ca-certfile", str(certs.ca), "--ssl-certfile", str(certs.cert),
            "--ssl-keyfile", str(certs.key),
            "--host", "127.0.0.1", "--port", str(self.port),
            "--disable-runtime-dependency-installation",
        ], "superlink.log")
        _wait_for_port(self.port, time.monotonic() + timeout, link)
        for i, silo in enumerate(self.silos):
            self._spawn([
                str(bin_dir / "flower-supernode"),
                "--root-certificates", str(certs.ca),
                "--superlink", f"127.0.0.1:{self.port}",
                "--node-config", f"{SILO_KEY}='{silo.as_posix()}'",
                "--host", "127.0.0.1", "--port", str(free_port()),
            ], f"supernode-{i}.log")
        home = self.workdir / "flwr-home"
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(
            '[superlink]\ndefault = "loopback"\n\n[superlink.loopback]\n'
            f'address = "127.0.0.1:{self.port}"\nroot-certificates = "{certs.ca.as_posix()}"\n'
        )

    def run(self, app: Path, *, timeout: float) -> Path:
        """``flwr run`` the app; wait for the ServerApp's ``result.json`` (or the timeout)."""
        result = self.job / "result" / "result.json"
        result.unlink(missing_ok=True)
        bin_dir = Path(sys.executable).parent
        started = subprocess.run(
            [str(bin_dir / "flwr"), "run", str(app), "loopback",
             "--run-config", f"{JOB_KEY}='{self.job.as_posix()}'"],
            env=self.env, capture_output=True, timeout=timeout, check=False,
        )
        (self.workdir / "flwr-run.log").write_bytes(started.stdout + started.stderr)
        if started.returncode != 0:
            raise InternalError(f"flwr run failed ({started.returncode}); see "
                                f"{self.workdir / 'flwr-run.log'}")
        deadline = time.monotonic() + timeout
        while not result.exists():
            if time.monotonic() > deadline:
                raise InternalError(f"no result within {timeout:.0f} s; logs in {self.workdir}")
            if any(p.poll() is not None for p in self.processes):
                raise InternalError(f"a Flower process exited early; logs in {self.workdir}")
            time.sleep(0.5)
        return result

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM every process group we started, SIGKILL what is left after ``grace``."""
        for proc in self.processes:
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            _signal_group(proc, signal.SIGKILL)  # children of an exited leader, too
            if proc.poll() is None:
                proc.wait(timeout=5)
        self.processes.clear()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def main(argv: list[str] | None = None) -> int:
    """``python -m privaudit.mechanisms.federated.flower.local JOB``: run an exported job."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m privaudit.mechanisms.federated.flower.local",
        description="Run an exported federation (deploy.py) on 127.0.0.1: SuperLink + one "
        "SuperNode per silo, TLS with throw-away certificates; processes always stopped.",
    )
    parser.add_argument("job", type=Path)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args(argv)
    job = args.job.resolve()
    silos = sorted(job.glob("silo-*"))
    with LocalDeployment(job=job / "server", silos=silos, workdir=job / "loopback") as run:
        result = run.run(job / "app", timeout=args.timeout)
    print(f"{result} (logs in {job / 'loopback'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
