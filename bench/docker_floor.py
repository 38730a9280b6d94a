"""Docker's own share of replacing one container: the floor under any tool's replace.

A replace that keeps the service answering (stackctl's swap, its create-before-destroy of
an unrouted service, Kamal's, Swarm's start-first) cannot do less than four Engine API
calls: create the new container, start it, stop the old one (SIGTERM; the app exits at
once here), remove it — and, to know the new one is ready before the old one goes, run
its health check until it passes (issue 11 asks for exactly that probe: an exec of the
check; here run again at once after a failure, where a probe would wait).
`bare_replaces` makes exactly those calls on this machine's daemon for a copy of a
container a stack runs — same image, command, env, user, limits, health check, read-only
root, network — and times each, with nothing of stackctl's between them: no process
start, no plan, no state, no retry, no edge. The benchmarks put the figure beside stackctl's
full deploy, so that a goal below it reads as what it is: out of reach on this daemon
whatever a tool does, not a missed optimisation.

The copies carry the label `bench.docker-floor` and none of stackctl's, so stackctl never
sees them; each run removes the ones it made, also on error.
"""

import http.client
import json
import os
import socket
import statistics
import time
import urllib.parse

DOCKER_SOCKET = "/var/run/docker.sock"
API = "/v1.41"
LABEL = "bench.docker-floor"
# The label's value: this measurement's own copies, not another run's (a child process
# is given its parent's, so that the parent can remove what a killed child left).
RUN = os.environ.get("DOCKER_FLOOR_RUN") or f"{os.getpid()}-{time.time_ns()}"
# Every Engine API call is bounded; a stop may take the container's grace period.
CALL_TIMEOUT = 60.0
# A copy of the old container must run before the timed replace begins.
RUNNING_DEADLINE = 30.0
# How long a new copy's health check may take to pass.
HEALTH_DEADLINE = 30.0

# Fields of an inspected container's `Config` that a create request takes as they are.
COPIED_CONFIG = ["Image", "Cmd", "Entrypoint", "Env", "User", "WorkingDir", "Healthcheck",
                 "ExposedPorts", "StopSignal", "StopTimeout"]


class UnixConnection(http.client.HTTPConnection):
    def __init__(self):
        super().__init__("localhost", timeout=CALL_TIMEOUT)

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(CALL_TIMEOUT)
        self.sock.connect(DOCKER_SOCKET)


def call(method, path, body=None, expect=(200, 201, 204, 304), raw=False):
    """One Engine API call on a fresh connection; the answer's JSON (its bytes when `raw`)."""
    connection = UnixConnection()
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, API + path,
                           body=json.dumps(body) if body is not None else None, headers=headers)
        response = connection.getresponse()
        data = response.read()
        if response.status not in expect:
            raise RuntimeError(f"{method} {path}: HTTP {response.status}: {data[:500]!r}")
        if raw:
            return data
        text = data.decode()
        return json.loads(text) if text.strip() else None
    finally:
        connection.close()


def copy_request(inspect):
    """A create request for a copy of an inspected container, and the networks to join."""
    config = {key: inspect["Config"][key] for key in COPIED_CONFIG
              if inspect["Config"].get(key) is not None}
    config["Labels"] = {LABEL: RUN}
    host_config = dict(inspect["HostConfig"])
    # Published ports would collide with the container copied; the stacks measured publish
    # none but the edge's, which is never copied.
    host_config.pop("PortBindings", None)
    networks = list(inspect["NetworkSettings"]["Networks"])
    host_config["NetworkMode"] = networks[0] if networks else "none"
    config["HostConfig"] = host_config
    return config, networks[1:]


def create_and_start(request, extra_networks, name):
    """Creates and starts a copy; returns (id, seconds to create, seconds to start)."""
    began = time.perf_counter()
    created = call("POST", f"/containers/create?name={name}", request)
    identifier = created["Id"]
    for network in extra_networks:
        call("POST", f"/networks/{network}/connect", {"Container": identifier})
    started = time.perf_counter()
    call("POST", f"/containers/{identifier}/start")
    return identifier, started - began, time.perf_counter() - started


def run_health_check(identifier, healthcheck):
    """Runs the container's health check until it passes, at once again after a failure
    (a readiness probe would wait between runs; the floor does not): exec create, start
    attached until it exits, read the exit code. Returns (seconds, runs)."""
    test = (healthcheck or {}).get("Test") or []
    if not test or test[0] not in ("CMD", "CMD-SHELL"):
        return 0.0, 0
    command = test[1:] if test[0] == "CMD" else ["/bin/sh", "-c", test[1]]
    began = time.perf_counter()
    runs = 0
    while True:
        runs += 1
        created = call("POST", f"/containers/{identifier}/exec",
                       {"Cmd": command, "AttachStdout": True, "AttachStderr": True})
        call("POST", f"/exec/{created['Id']}/start", {"Detach": False, "Tty": False},
             expect=(200,), raw=True)
        state = call("GET", f"/exec/{created['Id']}/json")
        while state["Running"]:
            time.sleep(0.005)
            state = call("GET", f"/exec/{created['Id']}/json")
        if state["ExitCode"] == 0:
            return time.perf_counter() - began, runs
        if time.perf_counter() - began > HEALTH_DEADLINE:
            raise RuntimeError(f"the copy {identifier[:12]}'s health check did not pass within "
                               f"{HEALTH_DEADLINE:.0f} s (exit {state['ExitCode']})")


def wait_running(identifier):
    deadline = time.perf_counter() + RUNNING_DEADLINE
    while time.perf_counter() < deadline:
        if call("GET", f"/containers/{identifier}/json")["State"]["Running"]:
            return
        time.sleep(0.05)
    raise RuntimeError(f"the copy {identifier[:12]} did not run within {RUNNING_DEADLINE:.0f} s")


def remove_copies():
    """Removes every copy this module made (also those a failed run left)."""
    filters = urllib.parse.quote(json.dumps({"label": [f"{LABEL}={RUN}"]}))
    for container in call("GET", f"/containers/json?all=1&filters={filters}") or []:
        call("DELETE", f"/containers/{container['Id']}?force=1", expect=(204, 404))


def bare_replaces(container_name, count, settle_seconds=0.3):
    """`count` timed replaces of a copy of `container_name`; one dict of seconds each.

    Keys: create, start, health_check (its runs until one passed, from right after the
    start), health_check_runs, stop, remove, total (create through remove, the health
    check included).
    """
    inspect = call("GET", f"/containers/{container_name}/json")
    request, extra_networks = copy_request(inspect)
    samples = []
    try:
        old, _, _ = create_and_start(request, extra_networks, f"docker-floor-{container_name}-0")
        wait_running(old)
        for number in range(1, count + 1):
            time.sleep(settle_seconds)
            began = time.perf_counter()
            new, create, start = create_and_start(
                request, extra_networks, f"docker-floor-{container_name}-{number}")
            health_check, health_check_runs = run_health_check(new, request.get("Healthcheck"))
            stopping = time.perf_counter()
            call("POST", f"/containers/{old}/stop")
            removing = time.perf_counter()
            call("DELETE", f"/containers/{old}")
            ended = time.perf_counter()
            samples.append({"create": create, "start": start, "health_check": health_check,
                            "health_check_runs": health_check_runs,
                            "stop": removing - stopping,
                            "remove": ended - removing, "total": ended - began})
            old = new
    finally:
        remove_copies()
    return samples


def measure_in_own_process(container_name, count):
    """`bare_replaces` in a process of its own (see `main`); the samples."""
    import subprocess
    import sys
    try:
        finished = subprocess.run([sys.executable, __file__, container_name, str(count)],
                                  stdout=subprocess.PIPE, text=True, check=True,
                                  timeout=CALL_TIMEOUT * 4 * (count + 1),
                                  env=dict(os.environ, DOCKER_FLOOR_RUN=RUN))
    except BaseException:
        # A child killed by the timeout (or by Ctrl-C) could not remove its copies; a
        # create it had in flight may land a moment later.
        remove_copies()
        time.sleep(1.0)
        remove_copies()
        raise
    return json.loads(finished.stdout)


def medians(samples):
    """The median of each key over the samples."""
    return {key: statistics.median(sample[key] for sample in samples) for key in samples[0]}


def main():
    """`docker_floor.py CONTAINER COUNT`: the samples as JSON on stdout.

    The benchmarks run it as its own process so that their load threads (Python's GIL)
    do not slow its calls.
    """
    import sys
    if len(sys.argv) != 3:
        raise SystemExit("usage: docker_floor.py CONTAINER COUNT")
    print(json.dumps(bare_replaces(sys.argv[1], int(sys.argv[2]))))


if __name__ == "__main__":
    main()
