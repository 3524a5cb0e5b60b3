"""The container engine for the Python container tests (and benchmarks/bench_registry.py): start
Debian's dockerd when none runs (and stop it again), build the serving image the way
scripts/container-test.sh does (same tag and base, so the layers are shared), run it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# A tag of its own (another job's container-test.sh may retag heartml-api:test meanwhile); the
# classic builder's cache still shares every layer with that build.
IMAGE = os.environ.get("HEARTML_REGISTRY_TEST_IMAGE", "heartml-api:registry-test")
BASE_IMAGE = os.environ.get("BASE_IMAGE", "heartml-base:bookworm")


class EngineError(RuntimeError):
    pass


def docker_binary() -> str:
    # Debian's client matches Debian's dockerd API version; another client may sit on PATH.
    if os.access("/usr/bin/docker", os.X_OK):
        return "/usr/bin/docker"
    return shutil.which("docker") or "docker"


def _answers(docker: str) -> bool:
    try:
        return subprocess.run([docker, "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextlib.contextmanager
def docker_engine(workdir: Path) -> Iterator[str]:
    """The docker client binary, with an engine answering; starts dockerd if none runs."""
    docker = docker_binary()
    if _answers(docker):
        yield docker
        return
    dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
    if not os.access(dockerd, os.X_OK):
        raise EngineError("dockerd is not installed: run scripts/ci-install-tools.sh as root")
    if os.geteuid() != 0:
        raise EngineError("dockerd is not running and this user cannot start it")
    log = workdir / "dockerd.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [dockerd, "--host", "unix:///var/run/docker.sock"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while not _answers(docker):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:]
                raise EngineError(f"dockerd did not start:\n{tail}")
            time.sleep(0.5)
        yield docker
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def ensure_serving_image(docker: str, workdir: Path) -> str:
    """Build IMAGE (the serving target) with scripts/build-image.sh: all cache hits when
    scripts/container-test.sh built the same sources."""
    env = {**os.environ, "IMAGE": IMAGE, "BASE_IMAGE": BASE_IMAGE, "MODEL_PACKAGE": "",
           "DOCKER": docker, "TMPDIR": str(workdir)}  # fmt: skip
    log = workdir / "build.log"
    with log.open("w") as out:
        result = subprocess.run(
            ["bash", str(REPO_ROOT / "scripts" / "build-image.sh"), "serving", "--quiet"],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=1500,
        )
    if result.returncode != 0:
        raise EngineError(f"image build failed:\n{log.read_text(errors='replace')[-4000:]}")
    return IMAGE


@dataclass
class Container:
    docker: str
    name: str
    started: float  # time.monotonic() just before `docker run`

    def logs(self) -> str:
        result = subprocess.run(
            [self.docker, "logs", self.name], capture_output=True, text=True, timeout=30
        )
        return result.stdout + result.stderr

    def mounts(self) -> list[object]:
        import json

        result = subprocess.run(
            [self.docker, "inspect", "-f", "{{json .Mounts}}", self.name],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return list(json.loads(result.stdout or "[]"))


@contextlib.contextmanager
def run_registry_container(
    docker: str, env: dict[str, str], image: str = IMAGE, extra_args: list[str] | None = None
) -> Iterator[Container]:
    """The image, detached, on the host's network (the registry listens on loopback), with a
    read-only root file system and a tmpfs /tmp as in Kubernetes; removed afterwards."""
    name = f"heartml-registry-{os.getpid()}-{int(time.time() * 1000) % 100000}"
    command = [docker, "run", "-d", "--name", name, "--network", "host", "--read-only",
               "--tmpfs", "/tmp:rw,size=64m", *(extra_args or [])]  # fmt: skip
    for key, value in env.items():
        command += ["-e", f"{key}={value}"]
    started = time.monotonic()
    result = subprocess.run([*command, image], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise EngineError(f"docker run failed: {result.stderr}")
    container = Container(docker, name, started)
    try:
        yield container
    finally:
        subprocess.run([docker, "rm", "-f", name], capture_output=True, timeout=60)


def container_rss_mb(docker: str, name: str) -> float:
    """VmRSS of the container's process 1 (uvicorn: the whole service, one worker)."""
    result = subprocess.run(
        [docker, "exec", name, "cat", "/proc/1/status"], capture_output=True, text=True, timeout=30
    )
    for line in result.stdout.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise EngineError(f"no VmRSS for process 1 of {name}: {result.stderr}")


if __name__ == "__main__":  # pragma: no cover - a manual check
    with docker_engine(Path(sys.argv[1])) as client:
        print(ensure_serving_image(client, Path(sys.argv[1])))
