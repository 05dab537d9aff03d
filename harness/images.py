"""Which image each service runs, and how a local one is built when it can't be pulled.

One code path for every machine: the pinned official image is used when the engine has it
or can pull it; otherwise a local image is built from Debian packages on a debootstrap base
(no registry needed), tagged with a hash of everything that went into it, so it is rebuilt
only when those inputs change. ``python -m harness.images`` (run by ``make setup``) makes
sure every image is present and prints progress on the long steps.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import docker
import docker.errors

from harness.errors import HarnessError
from harness.progress import Steps

if TYPE_CHECKING:
    from harness.topology import Service

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILES = Path(__file__).resolve().parent / "dockerfiles"
CACHE = ROOT / ".cache"
LABEL = "chaos-harness.image"

REPOSITORY = "chaos-harness"  # the namespace of every image the harness names (repository/NAME:tag)
LOCAL = "local-"  # the tag prefix of a local build; the rest is the digest of its inputs

TOXIPROXY_VERSION = "v2.12.0"
DEBIAN_SUITE = "bookworm"


# The long steps (builds, downloads) as a live display on a terminal, `[images]` lines elsewhere.
STEPS = Steps("images")


def say(message: str) -> None:
    """Progress goes to stderr so that command output (JSON, tables) stays clean."""
    STEPS.say(message)


@dataclass(frozen=True)
class ImageSpec:
    """One image of the stack: its official pinned name and how to make it locally."""

    name: str
    official: str | None
    dockerfile: str | None = None
    files: tuple[str, ...] = ()
    parent: str = "base"
    extra: Callable[["Builder", Path], str] | None = None
    description: str = ""


def _toxiproxy_binary(builder: "Builder", context: Path) -> str:
    """Builds the pinned Toxiproxy server as a static Go binary into the build context."""
    out = CACHE / "toxiproxy" / TOXIPROXY_VERSION
    binary = out / "server"
    if not binary.exists():
        if not shutil.which("go"):
            raise HarnessError("Go is not installed: install Go 1.22+ to build Toxiproxy locally")
        env = dict(os.environ, CGO_ENABLED="0", GOBIN=str(out))
        with STEPS.step(f"building Toxiproxy {TOXIPROXY_VERSION} with go install"):
            subprocess.run(
                ["go", "install", f"github.com/Shopify/toxiproxy/v2/cmd/server@{TOXIPROXY_VERSION}"],
                check=True, env=env, cwd=tempfile.gettempdir(),
            )
    shutil.copy2(binary, context / "toxiproxy-server")
    return TOXIPROXY_VERSION


def _shop_wheels(builder: "Builder", context: Path) -> str:
    """Copies the shop's source and wheels (downloaded on the host) into the build context.

    Wheels are fetched on the host because pip inside a build may have no route to an
    index; they are resolved for Linux x86_64 CPython 3.11 so any host can prepare them.
    """
    lock = ROOT / "services" / "requirements.lock"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:12]
    wheels = CACHE / "wheels" / digest
    if not (wheels / ".complete").exists():
        wheels.mkdir(parents=True, exist_ok=True)
        with STEPS.step("downloading the shop's wheels for linux x86_64 / CPython 3.11"):
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
                 "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_17_x86_64",
                 "--platform", "any", "--python-version", "3.11", "--implementation", "cp",
                 "-r", str(lock), "-d", str(wheels)],
                check=True,
            )
        (wheels / ".complete").write_text("ok")
    shutil.copytree(wheels, context / "wheels")
    shutil.copy2(lock, context / "wheels" / "requirements.lock")
    shutil.copytree(ROOT / "services" / "shop", context / "shop",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return _tree_digest(ROOT / "services" / "shop") + digest


IMAGES: dict[str, ImageSpec] = {
    spec.name: spec
    for spec in (
        ImageSpec("postgres", "postgres:16.4-bookworm", "postgres.Dockerfile",
                  ("postgres-entrypoint.sh",), description="Debian postgresql-15"),
        ImageSpec("rabbitmq", "rabbitmq:3.13.7", "rabbitmq.Dockerfile",
                  ("rabbitmq-entrypoint.sh", "rabbitmq-trim-plugins.escript"),
                  description="Debian rabbitmq-server, its plugins trimmed to those it runs"),
        ImageSpec("toxiproxy", "ghcr.io/shopify/toxiproxy:2.12.0", "toxiproxy.Dockerfile",
                  extra=_toxiproxy_binary, description=f"Toxiproxy {TOXIPROXY_VERSION} from source"),
        ImageSpec("python", "python:3.11-slim-bookworm", "python.Dockerfile",
                  description="Debian python3"),
        ImageSpec("shop", None, None, parent="python", extra=_shop_wheels,
                  description="the shop under test"),
    )
}


def repository(name: str) -> str:
    """The repository of an image the harness names: a base image key (`shop`) or a
    topology's built service (`notes-web`, the system's name and the service's)."""
    return f"{REPOSITORY}/{name}"


def local_build(name: str, digest: str) -> str:
    """The tag of a local build of `name` made from inputs whose digest is `digest`."""
    return f"{repository(name)}:{LOCAL}{digest}"


def _tree_digest(path: Path) -> str:
    h = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(str(file.relative_to(path)).encode())
        h.update(file.read_bytes())
    return h.hexdigest()[:12]


@dataclass
class Builder:
    """Resolves image names, building local ones on demand; one per engine connection."""

    client: docker.DockerClient
    mode: str = field(default_factory=lambda: os.environ.get("CHAOS_IMAGES", "auto"))
    resolved: dict[str, str] = field(default_factory=dict)

    def image(self, name: str) -> str:
        """The image reference to run for ``name`` (official when available, else local)."""
        if name not in self.resolved:
            self.resolved[name] = self._resolve(IMAGES[name])
        return self.resolved[name]

    def service_image(self, service: "Service") -> str:
        """The image reference a topology's service runs: a base image key, a build context of
        its own (built once per content, FROM the base it names), or a reference the engine has."""
        key = f"service:{service.name}:{service.image}"
        if key not in self.resolved:
            self.resolved[key] = self._service_image(service)
        return self.resolved[key]

    def _service_image(self, service: "Service") -> str:
        if service.build:
            return self._build_context(service)
        if service.image in IMAGES:
            return self.image(service.image)
        if self._present(service.image) or (self.mode != "local" and self._pull(service.image)):
            return service.image
        raise HarnessError(f"image {service.image} of service {service.name} is not in the engine and can't be "
                           "pulled: build or load it (docker build / docker load), or give the service a build:")

    def _build_context(self, service: "Service") -> str:
        build = service.build
        assert build is not None
        if not (build.context / build.dockerfile).is_file():
            raise HarnessError(f"service {service.name}: no {build.dockerfile} in its build context {build.context}")
        parent = self.image(build.base) if build.base else ""
        h = hashlib.sha256(parent.encode())
        h.update(build.dockerfile.encode())
        h.update(_tree_digest(build.context).encode())
        tag = local_build(service.image, h.hexdigest()[:12])
        if self._present(tag):
            return tag
        with STEPS.step(f"building {tag} (service {service.name}, from {build.context.name}/)",
                        done=f"{service.name} built in {{elapsed:.1f}}s") as detail:
            self._docker_build(build.context, tag, parent, detail, build.dockerfile)
        # Each change to the service's source makes a new build: the older ones of this service
        # (not another system's, whose repository differs) go once no container uses them.
        prune(self.client, {repository(service.image): tag})
        return tag

    def _resolve(self, spec: ImageSpec) -> str:
        if spec.official and self.mode in ("auto", "official"):
            if self._present(spec.official) or self._pull(spec.official):
                return spec.official
            if self.mode == "official":
                raise HarnessError(f"image {spec.official} is missing and can't be pulled: "
                                   "pull it, or set CHAOS_IMAGES=auto to build it locally")
        return self._build_local(spec)

    def _present(self, ref: str) -> bool:
        try:
            self.client.images.get(ref)
            return True
        except docker.errors.ImageNotFound:
            return False

    def _pull(self, ref: str) -> bool:
        started = time.monotonic()
        try:
            self.client.images.pull(ref)
        except docker.errors.APIError:
            say(f"{ref} can't be pulled ({time.monotonic() - started:.2f}s); using a local build")
            return False
        say(f"pulled {ref}")
        return True

    def _parent_ref(self, spec: ImageSpec) -> str:
        if spec.parent == "base":
            return self.base()
        return self.image(spec.parent)

    def base(self) -> str:
        """A minimal Debian image made with debootstrap, so nothing has to be pulled."""
        script = DEBIAN_SUITE + "|minbase|v1"
        tag = f"chaos-harness/debian:{DEBIAN_SUITE}-{hashlib.sha256(script.encode()).hexdigest()[:12]}"
        if self._present(tag):
            return tag
        if not shutil.which("debootstrap"):
            raise HarnessError("debootstrap is not installed: run `make setup` "
                               "(or apt-get install debootstrap)")
        with (STEPS.step(f"making the Debian {DEBIAN_SUITE} base with debootstrap (about 30 s)",
                         done=f"base image {tag} ready in {{elapsed:.1f}}s"),
              tempfile.TemporaryDirectory(prefix="chaos-rootfs-") as rootfs):
            subprocess.run(["debootstrap", "--variant=minbase", DEBIAN_SUITE, rootfs],
                           check=True, stdout=subprocess.DEVNULL)
            Path(rootfs, "etc/apt/apt.conf.d/99chaos").write_text(
                'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n')
            for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for entry in Path(rootfs, cache).glob("*.deb"):
                    entry.unlink()
            tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
            subprocess.run(["docker", "import", "--change", f"LABEL {LABEL}=base", "-", tag],
                           stdin=tar.stdout, check=True, stdout=subprocess.DEVNULL)
            tar.wait()
        return tag

    def _build_local(self, spec: ImageSpec) -> str:
        parent = self._parent_ref(spec)
        with tempfile.TemporaryDirectory(prefix=f"chaos-build-{spec.name}-") as tmp:
            context = Path(tmp)
            h = hashlib.sha256(parent.encode())
            dockerfile = (DOCKERFILES / spec.dockerfile) if spec.dockerfile else ROOT / "services" / "Dockerfile"
            shutil.copy2(dockerfile, context / "Dockerfile")
            h.update(dockerfile.read_bytes())
            for name in spec.files:
                shutil.copy2(DOCKERFILES / name, context / name)
                h.update((DOCKERFILES / name).read_bytes())
            if spec.extra:
                h.update(spec.extra(self, context).encode())
            tag = local_build(spec.name, h.hexdigest()[:12])
            if self._present(tag):
                return tag
            with STEPS.step(f"building {tag} ({spec.description})",
                            done=f"{spec.name} built in {{elapsed:.1f}}s") as detail:
                self._docker_build(context, tag, parent, detail)
            return tag

    def _docker_build(self, context: Path, tag: str, parent: str, detail: Callable[[str], None],
                      dockerfile: str = "Dockerfile") -> None:
        """Builds `tag`, reporting each Dockerfile step as the build's current detail."""
        stream = self.client.api.build(
            path=str(context), tag=tag, rm=True, forcerm=True, decode=True, dockerfile=dockerfile,
            buildargs={"BASE": parent} if parent else {}, labels={LABEL: tag},
        )
        for chunk in stream:
            if "error" in chunk:
                raise HarnessError(f"building {tag} failed: {chunk['error'].strip()}")
            line = chunk.get("stream", "").strip()
            if line.startswith("Step "):
                detail(line)


def ensure_all(client: docker.DockerClient | None = None) -> dict[str, str]:
    """Makes every image of the stack present; returns name -> image reference."""
    from harness.engine import connect

    builder = Builder(client or connect())
    refs = {name: builder.image(name) for name in IMAGES}
    for name, ref in refs.items():  # a stable name for docker-compose.chaos.yml
        builder.client.images.get(ref).tag(f"chaos-harness/{name}", "latest")
    prune(builder.client, {repository(name): ref for name, ref in refs.items()})
    return refs


def stale_builds(images: Iterable[tuple[str, Iterable[str]]], current: Mapping[str, str],
                 in_use: Set[str]) -> list[str]:
    """The local builds to remove, of (image id, its tags) listed: a `local-` tag of a repository
    `current` names (repository -> the reference it runs now), other than that reference, on an
    image no container uses (`in_use`: image ids). A repository `current` does not name (another
    system's service, a base image not resolved here) is never touched."""
    stale = []
    for image_id, tags in images:
        for tag in tags:
            name, _, version = tag.partition(":")
            if (version.startswith(LOCAL) and name in current and tag != current[name]
                    and image_id not in in_use):
                stale.append(tag)
    return sorted(stale)


def prune(client: docker.DockerClient, current: Mapping[str, str]) -> list[str]:
    """Removes the local builds stale_builds chooses (each change to a source makes a new one);
    an image a container uses, even a stopped one, stays until that container is gone."""
    in_use = {c.attrs.get("ImageID", "") for c in client.containers.list(all=True, sparse=True)}
    removed = []
    for tag in stale_builds(((i.id, i.tags) for i in client.images.list(filters={"label": LABEL})), current, in_use):
        try:
            client.images.remove(tag)
            removed.append(tag)
        except docker.errors.APIError:  # came into use since the listing: the next prune removes it
            continue
    if removed:
        say(f"removed older local builds: {', '.join(sorted(removed))}")
    return removed


def main() -> int:
    try:
        refs = ensure_all()
    except HarnessError as exc:
        print(f"chaos: {exc}", file=sys.stderr)
        return 2
    for name, ref in refs.items():
        say(f"{name:<10} {ref}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
