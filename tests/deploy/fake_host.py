"""A fake Docker host for deploy/deploy.sh: stand-ins for the `docker` and `curl` commands sharing one JSON state.

    python fake_host.py docker ARGS...     python fake_host.py curl ARGS...

The state ($FAKE_STATE/host.json) holds the containers, the local image tags and the registry; every command line is
appended to $FAKE_STATE/calls. Images misbehave by their ID (`broken`: never ready, `crashy`: dies right after its
first ready answer); `faults` make one image misbehave only under one container name (see FakeHost in
test_deploy_script.py), to reach the failures that happen only once the old container has been stopped.
"""
from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

STATE = Path(os.environ.get("FAKE_STATE", "."))
HOST_FILE = STATE / "host.json"


def load() -> dict:
    return json.loads(HOST_FILE.read_text())


def save(host: dict) -> None:
    HOST_FILE.write_text(json.dumps(host, indent=1))


def refuse(message: str) -> int:
    print(message, file=sys.stderr)
    return 1


def host_port(publish: str) -> str:
    """The host side of --publish [ip:]port:container_port."""
    return publish.split(":")[-2]


def resolve(host: dict, reference: str) -> str | None:
    """The image ID a reference names here: a local tag, repository@digest (digest = ID in this fake) or an ID."""
    if reference in host["images"]:
        return host["images"][reference]
    if "@" in reference:
        return reference.split("@", 1)[1]
    return reference if reference.startswith("sha256:") else None


def pull(host: dict, reference: str) -> str | None:
    if "missing" in reference or reference not in host["registry"]:
        return None
    image_id = host["registry"][reference]
    host["images"][reference] = image_id
    repository = reference.rsplit(":", 1)[0]
    host["repo_digests"].setdefault(image_id, [])
    if f"{repository}@{image_id}" not in host["repo_digests"][image_id]:
        host["repo_digests"][image_id].append(f"{repository}@{image_id}")
    return image_id


def has_fault(host: dict, kind: str, name: str, image_id: str) -> bool:
    return {"name": name, "image_id": image_id} in host["faults"].get(kind, [])


def port_taken(host: dict, port: str, by: str) -> bool:
    return port in host["busy_ports"] or any(
        other != by and container["running"] and host_port(container["publish"]) == port
        for other, container in host["containers"].items())


def container_run(host: dict, args: list[str]) -> int:
    options, index = {}, 0
    while args[index].startswith("--"):
        flag = args[index]
        if flag in ("--detach", "--read-only"):
            index += 1
            continue
        options.setdefault(flag, []).append(args[index + 1])
        index += 2
    reference = args[index]
    name, publish = options["--name"][0], options["--publish"][0]
    if name in host["containers"]:
        return refuse(f'docker: Error response from daemon: Conflict. The container name "/{name}" is already in use.')
    for env_file in options.get("--env-file", []):
        for line in Path(env_file).read_text().splitlines():
            if line and not line.startswith("#") and " " in line.split("=", 1)[0]:
                return refuse(f"docker: poorly formatted environment: variable '{line}' contains whitespaces.")
    image_id = resolve(host, reference) or pull(host, reference)
    if image_id is None:
        return refuse(f"docker: Error response from daemon: manifest for {reference} not found")
    if has_fault(host, "run_fails", name, image_id) or port_taken(host, host_port(publish), name):
        return refuse(f"docker: Error response from daemon: Bind for 0.0.0.0:{host_port(publish)} failed: "
                      "port is already allocated.")
    host["containers"][name] = {"image_id": image_id, "publish": publish,
                                "restart": options["--restart"][0], "running": True, "restarts": 0}
    if has_fault(host, "terminate_on_run", name, image_id):
        os.kill(os.getppid(), signal.SIGTERM)  # the job being cancelled while `docker run` is under way
    return 0


def inspect(host: dict, kind: str, template: str, target: str) -> int:
    if kind == "image":
        if target not in host["repo_digests"] and target not in host["images"].values():
            return refuse(f"Error: No such image: {target}")
        assert template == '{{join .RepoDigests " "}}', template
        print(" ".join(host["repo_digests"].get(target, [])))
        return 0
    container = host["containers"].get(target)
    if container is None:
        return refuse(f"Error: No such container: {target}")
    fields = {"{{.Id}}": target, "{{.Image}}": container["image_id"],
              "{{.State.Running}} {{.RestartCount}}": f"{str(container['running']).lower()} {container['restarts']}"}
    print(fields[template])
    return 0


def docker(host: dict, args: list[str]) -> int:
    containers = host["containers"]
    match args:
        case ["container" | "image" as kind, "inspect", "--format", template, target]:
            return inspect(host, kind, template, target)
        case ["image", "pull", reference]:
            return 0 if pull(host, reference) else refuse(f"Error response from daemon: manifest for {reference} "
                                                          "not found: manifest unknown")
        case ["container", "run", *rest]:
            return container_run(host, rest)
        case ["container", "stop", "--time", _, name] if name in containers:
            containers[name]["running"] = False
        case ["container", "start", name] if name in containers:
            if has_fault(host, "start_fails", name, containers[name]["image_id"]):
                return refuse(f"Error response from daemon: failed to start {name}")
            containers[name].update(running=True, restarts=0)
        case ["container", "rename", old, new] if old in containers and new not in containers:
            containers[new] = containers.pop(old)
        case ["container", "rm", "--force", *names]:
            missing = [name for name in names if containers.pop(name, None) is None]
            if missing:
                return refuse(f"Error response from daemon: No such container: {missing[0]}")
        case ["container", "logs", "--tail", _, name] if name in containers:
            print(f"log line of {name}")
        case _:
            return refuse(f"fake docker cannot do: {' '.join(args)}")
    return 0


def curl(host: dict, args: list[str]) -> int:
    """/readyz answers when a running container publishes the URL's port and neither it nor its image is broken."""
    port = str(urlsplit(args[-1]).port)
    for name, container in host["containers"].items():
        if container["running"] and host_port(container["publish"]) == port:
            image_id = container["image_id"]
            if "broken" in image_id or has_fault(host, "never_ready", name, image_id):
                return 22
            if "crashy" in image_id or has_fault(host, "dies_after_ready", name, image_id):
                # Dies right after this answer: restarted by its policy, or gone for good without one.
                if container["restart"] == "no":
                    container["running"] = False
                else:
                    container["restarts"] += 1
            return 0
    return 7


def main(command: str, args: list[str]) -> int:
    with (STATE / "calls").open("a") as calls:
        calls.write(" ".join([command, *args]) + "\n")
    host = load()
    status = docker(host, args) if command == "docker" else curl(host, args)
    save(host)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
