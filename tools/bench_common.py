"""Helpers shared by the Python benchmarks in tools/ (bench-embed, bench-rerank)."""
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "tools" / ".venv"


def ensure_venv(script):
    """numpy/tokenizers/torch live in tools/.venv: re-exec `script` under its python if needed."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    out = subprocess.run([str(ROOT / "tools" / "venv.sh")], check=True, stdout=subprocess.PIPE, text=True)
    py = out.stdout.strip().splitlines()[-1]
    os.execv(py, [py, str(Path(script).resolve()), *sys.argv[1:]])


def run_child(cmd, stdin_bytes=b""):
    """Runs cmd, feeding stdin_bytes; returns (stdout, stderr, exit code, wall seconds, peak RSS MiB).

    Pipes are pumped by threads (no deadlock on large outputs) and the child is reaped with
    os.wait4 so ru_maxrss is that child's own peak, not the max over all children so far."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    chunks = {"out": [], "err": []}

    def feed():
        try:
            p.stdin.write(stdin_bytes)
        except BrokenPipeError:
            pass
        finally:
            p.stdin.close()

    def drain(stream, key):
        chunks[key].append(stream.read())

    threads = [threading.Thread(target=feed), threading.Thread(target=drain, args=(p.stdout, "out")),
               threading.Thread(target=drain, args=(p.stderr, "err"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    p.returncode = os.waitstatus_to_exitcode(status)  # tell Popen it has been reaped
    return b"".join(chunks["out"]), b"".join(chunks["err"]), p.returncode, wall, usage.ru_maxrss / 1024


def last_json_line(data, key):
    """The last line of data that is a JSON object containing key (stderr may hold logs too)."""
    for line in reversed(data.decode("utf-8", "replace").splitlines()):
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and key in obj:
            return obj
    return None


def fail(what, code, err):
    sys.exit(f"{what} failed (exit {code}):\n{err.decode('utf-8', 'replace')[-2000:]}")
