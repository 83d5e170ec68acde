"""The processes the benchmark starts: servers it owns and stops whatever the exit, and commands it runs."""

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


def proc_stats():
    """The fields of /proc/PID/stat after the command name (which may hold spaces), by pid."""
    stats = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        stats[int(entry)] = stat[stat.rindex(")") + 2:].split()
    return stats


def descendants(pid, stats=None):
    """pid and every process below it (nginx master and workers, for example)."""
    children = {}
    for p, fields in (proc_stats() if stats is None else stats).items():
        children.setdefault(int(fields[1]), []).append(p)
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total


class Server:
    """A server process started and owned by the benchmark, in a process group of its own."""

    def __init__(self, name, argv, workdir, ready_url, env=None):
        self.name = name
        self.argv = argv
        self.workdir = workdir
        self.ready_url = ready_url
        self.env = env
        self.proc = None
        self.out_path = os.path.join(workdir, "stdout.log")
        self.err_path = os.path.join(workdir, "stderr.log")
        self.peaks = {}  # scenario -> peak RSS in KiB

    def start(self, timeout=60):
        os.makedirs(self.workdir, exist_ok=True)
        with open(self.out_path, "ab") as out, open(self.err_path, "ab") as err:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         cwd=self.workdir, env=self.env, start_new_session=True)
        STARTED.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited with {self.proc.returncode} at start-up:\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.ready_url, timeout=2) as r:
                    if r.status == 200:
                        self.record_peak("idle")
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise BenchError(f"{self.name} did not answer {self.ready_url} within {timeout}s:\n{self.tail()}")

    def tail(self, lines=30):
        text = ""
        for path in (self.out_path, self.err_path):
            try:
                with open(path, errors="replace") as f:
                    text += "".join(f.readlines()[-lines:])
            except OSError:
                pass
        return text

    def pids(self):
        if self.proc is None or self.proc.poll() is not None:
            return []
        return descendants(self.proc.pid)

    def reset_peak(self):
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/clear_refs", "w") as f:
                    f.write("5")  # resets VmHWM to the current RSS
            except OSError:
                pass

    def peak_kib(self):
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            total += int(line.split()[1])
            except OSError:
                pass
        return total

    def record_peak(self, scenario):
        self.peaks[scenario] = max(self.peaks.get(scenario, 0), self.peak_kib())

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        else:
            # The leader is gone; make sure nothing of its group is left.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self in STARTED:
            STARTED.remove(self)


STARTED = []


def stop_all():
    for server in list(reversed(STARTED)):
        try:
            server.stop()
        except Exception as e:  # keep stopping the others
            log(f"stopping {server.name}: {e}")


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def run(argv, timeout=None, check=True):
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise BenchError(f"{shlex.join(argv)} failed ({p.returncode}): {p.stderr.strip()[-2000:]}")
    return p
