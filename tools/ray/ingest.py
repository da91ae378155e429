"""Bulk ingest on Ray Data: embed documents with long-lived `sextant embed` workers and build
N shard collections by a hash of the document id.

    tools/ray/run ingest --input corpus.jsonl|BEIR-folder|text-folder --shards N --out DIR
                         [--workers W] [--threads-per-worker T] [--address auto]

Input: JSON lines {"id" (or "_id"), "text", "title"?, "metadata"?}, a BEIR folder (its
corpus.jsonl), or a folder of text files (.txt, .md, .markdown, .rst; the id is the relative
path). As `sextant index` does with JSON lines, a record with a title is stored and embedded as
title + ". " + text; records with neither text nor title are skipped (a warning). Output: DIR/shard-00 ... (ordinary Sextant collections, each document
doc:ID with one chunk), DIR/vectors/shard-XX.{jsonl,npy} (what was imported) and
DIR/manifest.json. Every id is checked to be in exactly one shard at the end.
"""
import argparse
import json
import math
import os
import re
import subprocess
import sys
import threading
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from common import UserError, default_model, model_fingerprint, open_log, read_log, run_main, sextant_binary, shard_of

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst"}
PAD = '{"id": -1, "text": "."}\n'   # fills a partial batch (see EmbedWorker)


# MARK: Reading the input

def _check_id(doc_id, where):
    if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
        raise UserError(f"{where}: needs an \"id\" (or \"_id\"): a string or an integer")
    doc_id = str(doc_id)
    if not 1 <= len(doc_id) <= 256:
        raise UserError(f"{where}: the id must have 1 to 256 characters")
    if any(unicodedata.category(c) == "Cc" for c in doc_id):
        raise UserError(f"{where}: the id must not contain control characters")
    return doc_id


def _check_text(text, where):
    if not isinstance(text, str) or not text.strip():
        raise UserError(f"{where}: needs a non-empty \"text\" string")
    if "\0" in text:
        raise UserError(f"{where}: the text contains a NUL character")
    return text


def read_jsonl(path):
    """Documents of a JSON lines file: [{id, text, title, metadata}], title folded into the text.
    Records whose text and title are empty are skipped with a warning."""
    docs, empty = [], []
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})")
    with f:
        try:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f"{path} line {number}"
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise UserError(f"{where}: not valid JSON ({e.msg})")
                if not isinstance(record, dict):
                    raise UserError(f"{where}: expected an object {{\"id\", \"text\"}}")
                doc_id = _check_id(record.get("id", record.get("_id")), where)
                text = record.get("text")
                title = record.get("title") or ""
                if not isinstance(title, str):
                    raise UserError(f"{where}: \"title\" must be a string")
                if isinstance(text, str) and not text.strip() and not title.strip():
                    empty.append(doc_id)   # nothing to embed or search (sextant index skips these too)
                    continue
                text = _check_text(text, where)
                metadata = record.get("metadata", {})
                if not isinstance(metadata, dict):
                    raise UserError(f"{where}: \"metadata\" must be an object")
                docs.append({"id": doc_id, "text": f"{title}. {text}" if title else text,
                             "title": title, "metadata": metadata})
        except UnicodeDecodeError:
            raise UserError(f"{path}: not UTF-8 text")
    if empty:
        print(f"warning: {path}: {len(empty)} record(s) without text skipped (ids {', '.join(empty[:10])}"
              f"{', ...' if len(empty) > 10 else ''})", file=sys.stderr)
    return docs


def read_folder(folder):
    """Documents of a folder of text files (recursively; hidden files and other suffixes skipped)."""
    docs, skipped = [], 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(root) / name
            if name.startswith(".") or path.suffix.lower() not in TEXT_SUFFIXES:
                skipped += 1
                continue
            rel = path.relative_to(folder).as_posix()
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                raise UserError(f"{path}: not UTF-8 text")
            except OSError as e:
                raise UserError(f"{path}: cannot read ({e.strerror})")
            if not text.strip():
                print(f"warning: {path}: empty, skipped", file=sys.stderr)
                continue
            docs.append({"id": _check_id(rel, str(path)), "text": _check_text(text, str(path)),
                         "title": "", "metadata": {}})
    if skipped:
        print(f"warning: {skipped} file(s) without a text suffix ({', '.join(sorted(TEXT_SUFFIXES))}) skipped",
              file=sys.stderr)
    return docs


def read_documents(input_path):
    """Documents of a JSON lines file, a BEIR folder (corpus.jsonl) or a folder of text files;
    ids must be unique."""
    p = Path(input_path)
    if p.is_dir():
        docs = read_jsonl(p / "corpus.jsonl") if (p / "corpus.jsonl").is_file() else read_folder(p)
    elif p.exists():
        docs = read_jsonl(p)
    else:
        raise UserError(f"{input_path}: no such file or folder")
    if not docs:
        raise UserError(f"{input_path}: no documents")
    seen = {}
    for i, d in enumerate(docs):
        if d["id"] in seen:
            raise UserError(f"{input_path}: document id '{d['id']}' is given twice (documents {seen[d['id']] + 1} and {i + 1})")
        seen[d["id"]] = i
    return docs


# MARK: Embedding workers

class EmbedWorker:
    """A Ray Data actor: one `sextant embed` process, started once (one model load), fed batch
    after batch over stdin/stdout. sextant embed embeds every --batch-lines inputs, so a partial
    batch is padded with "." lines whose vectors are dropped (vectors do not depend on batching)."""

    def __init__(self, binary, model, threads, batch_lines, crash_marker=None):
        self.batch_lines = batch_lines
        self.crash_marker = crash_marker
        self.log = open_log()
        self.cmd = [binary, "embed", "--model", model, "--threads", str(threads), "--batch-lines", str(batch_lines)]
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log)
        self.log_offset = 0

    def _failure(self, what):
        self.proc.kill()
        self.proc.wait()
        lines = read_log(self.log)[0].splitlines()
        tail = [l.strip() for l in lines if l.strip() and "reached the limit" not in l][-3:]
        return RuntimeError(f"sextant embed {what} (exit status {self.proc.returncode}): {' | '.join(tail) or 'no message'}")

    def __call__(self, batch):
        if self.crash_marker:   # test hook: the first batch of the whole job kills its worker once
            try:
                os.close(os.open(self.crash_marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                os._exit(1)
            except FileExistsError:
                pass
        rows, texts = batch["row"], batch["text"]
        n = len(rows)
        lines = "".join(json.dumps({"id": int(r), "text": str(t)}) + "\n" for r, t in zip(rows, texts))
        lines += PAD * (-n % self.batch_lines)
        if self.proc.poll() is not None:
            raise self._failure("exited before a batch")

        def feed():
            try:
                self.proc.stdin.write(lines.encode("utf-8"))
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                pass   # the reader reports the failure

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        vectors = None
        for i in range(n + (-n % self.batch_lines)):
            line = self.proc.stdout.readline()
            if not line:
                writer.join()
                raise self._failure("stopped in the middle of a batch")
            if i >= n:
                continue
            out = json.loads(line)
            if out.get("id") != int(rows[i]):
                raise RuntimeError(f"sextant embed answered row {out.get('id')} where row {int(rows[i])} was expected")
            v = np.asarray(out["embedding"], dtype=np.float32)
            if vectors is None:
                vectors = np.empty((n, v.shape[0]), dtype=np.float32)
            vectors[i] = v
        writer.join()
        import ray
        node = ray.get_runtime_context().get_node_id()
        truncated = np.zeros(n, dtype=np.int64)   # the batch's count, on its first row
        truncated[0] = self._truncated()
        return {"row": np.asarray(rows, dtype=np.int64), "vector": vectors, "node": np.asarray([node] * n, dtype=object),
                "truncated": truncated}

    def _truncated(self):
        """Inputs sextant embed truncated at the model's limit since the last call (from its warnings)."""
        text, self.log_offset = read_log(self.log, self.log_offset)
        return sum(int(m) for m in re.findall(r"warning: (\d+) input\(s\) reached the limit", text))

    def __del__(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
            self.log.close()
        except Exception:
            pass


def embed_documents(texts, binary, model, workers, threads, batch_size, crash_marker=None, progress=True):
    """Vectors of the texts (float32, row i for text i), embedded by `workers` Ray actors.
    Ray retries the batches of a worker that died; each row must come back (duplicates must be
    identical), else this fails. Returns (vectors, rows returned twice, number of nodes used,
    number of texts truncated at the model's token limit)."""
    import ray.data
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = progress
    ctx.print_on_execution_start = progress
    # One block per batch (each block is one task, so a dead worker's block is retried whole),
    # at most batch_size rows, at least two blocks per worker; blocks have m or m - 1 rows and
    # sextant embeds every m lines, so at most one "." line pads a batch.
    n = len(texts)
    blocks = min(n, max(math.ceil(n / batch_size), 2 * workers))
    m = math.ceil(n / blocks)
    ds = ray.data.from_items([{"row": i, "text": t} for i, t in enumerate(texts)], override_num_blocks=blocks)
    # Ray Data's actor pool restarts a dead actor and retries its task (max_restarts=-1,
    # max_task_retries=-1 are its defaults); a Python exception in a worker fails the job.
    ds = ds.map_batches(
        EmbedWorker, batch_size=None, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=threads,
        fn_constructor_kwargs=dict(binary=binary, model=model, threads=threads, batch_lines=m,
                                   crash_marker=crash_marker))
    vectors, seen, nodes, truncated = None, np.zeros(len(texts), dtype=np.int32), set(), 0
    for batch in ds.iter_batches(batch_format="numpy", batch_size=None):
        rows, vecs = batch["row"], np.asarray(batch["vector"], dtype=np.float32)
        nodes.update(batch["node"])
        truncated += int(batch["truncated"].sum())
        if vectors is None:
            vectors = np.zeros((len(texts), vecs.shape[1]), dtype=np.float32)
        for r, v in zip(rows, vecs):
            if seen[r] and vectors[r].tobytes() != v.tobytes():
                raise RuntimeError(f"row {r} came back twice with different vectors")
            vectors[r] = v
            seen[r] += 1
    missing = np.flatnonzero(seen == 0)
    if len(missing):
        raise RuntimeError(f"{len(missing)} of {len(texts)} documents came back without a vector (first: row {missing[0]})")
    duplicates = int((seen > 1).sum())
    return vectors, duplicates, len(nodes), truncated


# MARK: Shards

def list_ids(binary, index, model):
    """Every document id of a collection (sextant docs list, page by page)."""
    ids, after = [], 0
    while True:
        out = subprocess.run([binary, "docs", "list", "--index", index, "--model", model, "--json",
                              "--limit", "1000", "--after", str(after)], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"sextant docs list --index {index}: {out.stderr.strip()}")
        page = json.loads(out.stdout)
        for d in page["documents"]:
            path = d["path"]
            if not path.startswith("doc:"):
                raise RuntimeError(f"{index}: unexpected document {path}")
            ids.append(path[4:])
        if page["next_after"] is None:
            return ids
        after = page["next_after"]


def build_shards(docs, vectors, shards, out, binary, model, sha):
    """Writes DIR/vectors/shard-XX.{jsonl,npy} and imports each into DIR/shard-XX."""
    groups = [[] for _ in range(shards)]
    for i, d in enumerate(docs):
        groups[shard_of(d["id"], shards)].append(i)
    (out / "vectors").mkdir(parents=True, exist_ok=True)

    def one(s):
        rows, name = groups[s], f"shard-{s:02d}"
        index = out / name
        if not rows:
            return name, 0
        lines = out / "vectors" / f"{name}.jsonl"
        with open(lines, "w", encoding="utf-8") as f:
            for i in rows:
                d = docs[i]
                record = {"id": d["id"], "text": d["text"], "metadata": d["metadata"]}
                if d["title"]:
                    record["title"] = d["title"]
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        np.save(out / "vectors" / f"{name}.npy", vectors[rows])
        r = subprocess.run([binary, "import", str(lines), "--vectors", str(out / "vectors" / f"{name}.npy"),
                            "--model-sha256", sha, "--index", str(index), "--model", model],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise UserError(f"sextant import into {index}: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else 'failed'}")
        return name, len(rows)

    with ThreadPoolExecutor(max_workers=min(shards, 2)) as pool:
        counts = dict(pool.map(one, range(shards)))
    return groups, counts


def verify_shards(docs, shards, out, binary, model):
    """Every input id exactly once over all shards, each in its hash's shard; fails otherwise."""
    expected = {d["id"] for d in docs}
    found = {}
    for s in range(shards):
        index = out / f"shard-{s:02d}"
        if not index.exists():
            continue
        for doc_id in list_ids(binary, str(index), model):
            if doc_id in found:
                raise RuntimeError(f"document '{doc_id}' is in shard {found[doc_id]} and shard {s}")
            if shard_of(doc_id, shards) != s:
                raise RuntimeError(f"document '{doc_id}' is in shard {s}, its hash says {shard_of(doc_id, shards)}")
            found[doc_id] = s
    if set(found) != expected:
        missing, extra = expected - set(found), set(found) - expected
        raise RuntimeError(f"the shards hold {len(found)} documents, the input {len(expected)}: "
                           f"{len(missing)} missing, {len(extra)} not in the input")
    return len(found)


def ingest(input_path, shards, out, workers=1, threads=1, batch_size=256, model=None, crash_marker=None,
           progress=True, connect=None):
    """The whole job: read and check the input, call connect() (which starts Ray, if given),
    embed on Ray Data, build and check the shards. Returns the manifest (also written to
    OUT/manifest.json). Bad input is a UserError before Ray starts."""
    binary = sextant_binary()
    model = os.path.abspath(model or default_model())
    sha = model_fingerprint(model)
    if shards < 1 or workers < 1 or threads < 1 or batch_size < 1:
        raise UserError("--shards, --workers, --threads-per-worker and --batch-size must be at least 1")
    out = Path(out).resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out}: exists and is not an empty folder; choose a new one")
    started = time.time()
    docs = read_documents(input_path)
    read_s = time.time() - started
    if connect:
        connect()
    t = time.time()
    vectors, duplicates, nodes, truncated = embed_documents([d["text"] for d in docs], binary, model, workers, threads,
                                          batch_size, crash_marker, progress)
    embed_s = time.time() - t
    t = time.time()
    out.mkdir(parents=True, exist_ok=True)
    groups, counts = build_shards(docs, vectors, shards, out, binary, model, sha)
    import_s = time.time() - t
    total = verify_shards(docs, shards, out, binary, model)
    manifest = {
        "documents": total, "shards": [str(out / f"shard-{s:02d}") for s in range(shards)],
        "documents_per_shard": [counts[f"shard-{s:02d}"] for s in range(shards)],
        "model": model, "model_sha256": sha, "dimensions": int(vectors.shape[1]),
        "hash": "sha256(id)[:8] big-endian mod shards", "workers": workers, "threads_per_worker": threads, "nodes": nodes,
        "rows_returned_twice": duplicates, "truncated_at_model_limit": truncated,
        "seconds": {"read": round(read_s, 3), "embed": round(embed_s, 3), "import": round(import_s, 3),
                    "total": round(time.time() - started, 3)},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv=None):
    ap = argparse.ArgumentParser(prog="tools/ray/run ingest", description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", required=True, help="JSON lines file, BEIR folder or folder of text files")
    ap.add_argument("--shards", type=int, required=True, help="number of shard collections")
    ap.add_argument("--out", required=True, help="new folder for the shards")
    ap.add_argument("--workers", type=int, default=1, help="embedding actors (default 1)")
    ap.add_argument("--threads-per-worker", type=int, default=1, help="CPUs each actor reserves and sextant threads (default 1)")
    ap.add_argument("--batch-size", type=int, default=256, help="documents per batch (default 256)")
    ap.add_argument("--model", help="model folder (default $SEXTANT_MODEL, else models/all-MiniLM-L6-v2)")
    ap.add_argument("--address", help="Ray cluster address (e.g. auto); default: a local Ray")
    ap.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    a = ap.parse_args(argv)
    from raycluster import init_ray
    try:
        m = ingest(a.input, a.shards, a.out, a.workers, a.threads_per_worker, a.batch_size, a.model,
                   os.environ.get("SEXTANT_RAY_TEST_CRASH_ONCE"), connect=lambda: init_ray(a.address, a.num_cpus))
    except UserError:
        raise
    except Exception as e:   # a worker's error arrives wrapped in Ray's traceback: keep its last line
        lines = [l.strip() for l in str(e).splitlines() if l.strip()]
        raise UserError(lines[-1] if lines else type(e).__name__)
    print(f"ingested {m['documents']} documents into {len(m['shards'])} shards "
          f"({', '.join(map(str, m['documents_per_shard']))}) in {m['seconds']['total']} s; "
          f"embedding {m['seconds']['embed']} s ({m['documents'] / m['seconds']['embed']:.1f} documents/s)")
    if m["truncated_at_model_limit"]:
        print(f"note: {m['truncated_at_model_limit']} documents reach the model's token limit (max_seq_length): their "
              "vectors cover only that many first tokens; the whole text is stored and searched lexically", file=sys.stderr)
    for s in m["shards"]:
        print(s)


if __name__ == "__main__":
    run_main(main)
