"""Shared helpers of the Ray tools: the sextant binary, errors, shard hashing, model fingerprint."""
import hashlib
import os
import subprocess
import tempfile
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class UserError(Exception):
    """A problem with the user's input or set-up: printed as one line, exit status 1."""


def sextant_binary() -> str:
    """The sextant binary: $SEXTANT_BIN, else <repo>/.build/release/sextant."""
    path = os.environ.get("SEXTANT_BIN") or str(REPO / ".build/release/sextant")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        where = "$SEXTANT_BIN" if os.environ.get("SEXTANT_BIN") else "the default place"
        raise UserError(f"no sextant binary at {path} ({where}): build it (swift build -c release) or set SEXTANT_BIN")
    return os.path.abspath(path)


def open_log():
    """An anonymous log file for a child process's output: it has no name, so nothing is left
    in /tmp when Ray kills the actor that owns it."""
    return tempfile.TemporaryFile(prefix="sextant-")


def read_log(f, start: int = 0) -> tuple[str, int]:
    """What a child has written to the log `f` from byte `start` on, and the end offset; read
    without moving the offset the child writes at."""
    fd = f.fileno()
    end = os.fstat(fd).st_size
    return os.pread(fd, max(0, end - start), start).decode("utf-8", errors="replace"), end


def default_model() -> str:
    """The model folder: $SEXTANT_MODEL, else <repo>/models/all-MiniLM-L6-v2."""
    return os.environ.get("SEXTANT_MODEL") or str(REPO / "models/all-MiniLM-L6-v2")


def model_fingerprint(model_dir: str) -> str:
    """The model fingerprint a collection records (what `sextant import --model-sha256` checks),
    as `sextant fingerprint` prints it."""
    r = subprocess.run([sextant_binary(), "fingerprint", "--model", model_dir], capture_output=True, text=True)
    if r.returncode != 0:
        lines = r.stderr.strip().splitlines()
        raise UserError(lines[-1] if lines else f"sextant fingerprint --model {model_dir} failed (exit {r.returncode})")
    return r.stdout.strip()


def shard_of(doc_id: str, shards: int) -> int:
    """The shard of a document: the first 8 bytes of sha256(id, UTF-8) as a big-endian integer, mod N."""
    return int.from_bytes(hashlib.sha256(doc_id.encode("utf-8")).digest()[:8], "big") % shards


def run_main(main) -> None:
    """Runs main(); a UserError (or Ctrl-C) becomes one line on stderr and a non-zero exit."""
    try:
        main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
