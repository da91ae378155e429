"""Benchmark of the Ray tools on a BEIR corpus (default: Cranfield, read in place), in one run:
ingest documents/s with 1 and 2 Ray workers (1 thread each, 2 shards), next to one
`sextant embed --threads 2` process; then search latency p50/p99 (each query once, one at a
time, after a warm-up pass) through the Ray Serve router over the 2 shards against one
`sextant serve` on a single collection of the same vectors.

    tools/ray/bench [--corpus DIR] [--mode dense,hybrid]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

from common import REPO, default_model, model_fingerprint, run_main, sextant_binary, UserError
import ingest


def percentile(values, p):
    return float(np.percentile(np.asarray(values) * 1000, p))


def latencies(url, queries, mode):
    session = requests.Session()
    times = []
    for rnd in range(2):   # the first pass warms up
        for q in queries:
            t = time.perf_counter()
            r = session.post(f"{url}/v1/search", json={"query": q, "k": 10, "mode": mode}, timeout=60)
            if r.status_code != 200:
                raise RuntimeError(f"{url}: {r.status_code} {r.text[:200]}")
            if rnd:
                times.append(time.perf_counter() - t)
    return times


def main():
    ap = argparse.ArgumentParser(prog="tools/ray/bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=str(REPO.parent / "shared/datasets/cranfield"), help="BEIR folder (corpus.jsonl, queries.jsonl)")
    ap.add_argument("--mode", default="dense,hybrid", help="search modes to time (default dense,hybrid)")
    a = ap.parse_args()
    binary, model = sextant_binary(), default_model()
    corpus = Path(a.corpus)
    if not (corpus / "corpus.jsonl").is_file() or not (corpus / "queries.jsonl").is_file():
        raise UserError(f"{corpus}: not a BEIR folder (corpus.jsonl, queries.jsonl)")
    queries = [json.loads(l)["text"] for l in open(corpus / "queries.jsonl") if l.strip()]
    work = Path(tempfile.mkdtemp(prefix="sextant-ray-bench-"))
    import ray
    from ray import serve
    import serve as sharded
    from raycluster import init_ray
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    docs = ingest.read_documents(corpus)
    print(f"corpus {corpus} ({len(docs)} documents, {len(queries)} queries); "
          f"CPU {cpu}, {os.cpu_count()} cores; model {Path(model).name}; work folder {work}", flush=True)
    lines = "".join(json.dumps({"text": d["text"]}) + "\n" for d in docs).encode()
    t = time.time()
    subprocess.run([binary, "embed", "--threads", "2", "--model", model], input=lines, capture_output=True, check=True)
    single_embed = len(docs) / (time.time() - t)

    t = time.time()
    init_ray(num_cpus=os.cpu_count(), quiet=True)
    ray_start = time.time() - t
    rows = []
    for workers in (1, 2):
        m = ingest.ingest(corpus, 2, work / f"ingest-{workers}", workers=workers, threads=1, model=model, progress=False)
        rows.append((workers, m))
    print(f"\ningest ({len(docs)} documents, 2 shards; ray.init {ray_start:.1f} s not counted)")
    print(f"{'':34} {'docs/s (embedding)':>19} {'whole job s':>12}")
    print(f"{'one sextant embed --threads 2':34} {single_embed:19.1f} {'':>12}")
    for workers, m in rows:
        label = f"Ray Data, {workers} worker{'s' if workers > 1 else ''} x 1 thread"
        print(f"{label:34} {m['documents'] / m['seconds']['embed']:19.1f} {m['seconds']['total']:12.1f}")
    r1, r2 = (m["documents"] / m["seconds"]["embed"] for _, m in rows)
    print(f"2 workers / 1 worker: {r2 / r1:.2f}x")

    # One collection of the same vectors, served by sextant serve.
    out = work / "ingest-2"
    texts, vecs = [], []
    for s in (0, 1):
        texts.append((out / f"vectors/shard-{s:02d}.jsonl").read_text())
        vecs.append(np.load(out / f"vectors/shard-{s:02d}.npy"))
    (work / "single.jsonl").write_text("".join(texts))
    np.save(work / "single.npy", np.concatenate(vecs))
    subprocess.run([binary, "import", str(work / "single.jsonl"), "--vectors", str(work / "single.npy"), "--model-sha256",
                    model_fingerprint(model), "--index", str(work / "single"), "--model", model], check=True, capture_output=True)
    log = open(work / "serve.log", "w")
    proc = subprocess.Popen([binary, "serve", "--index", str(work / "single"), "--port", "0"], stdout=log, stderr=log)
    try:
        single = None
        for _ in range(600):
            found = re.search(r"on http://127\.0\.0\.1:(\d+)", (work / "serve.log").read_text())
            if found:
                single = f"http://127.0.0.1:{found.group(1)}"
                break
            time.sleep(0.05)
        import socket
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(sharded.make_app([str(out / "shard-00"), str(out / "shard-01")], replicas=1, replica_cpus=0),
                  name="bench", route_prefix="/")
        router = f"http://127.0.0.1:{port}"
        print(f"\nsearch, k = 10, {len(queries)} queries one at a time (ms, client side, embedding included)")
        print(f"{'':28} {'p50':>7} {'p99':>7}")
        for mode in a.mode.split(","):
            one, many = latencies(single, queries, mode), latencies(router, queries, mode)
            print(f"{'sextant serve, ' + mode:28} {percentile(one, 50):7.2f} {percentile(one, 99):7.2f}")
            print(f"{'Ray router, 2 shards, ' + mode:28} {percentile(many, 50):7.2f} {percentile(many, 99):7.2f}")
            print(f"{'ratio router / single':28} {percentile(many, 50) / percentile(one, 50):6.2f}x "
                  f"{percentile(many, 99) / percentile(one, 99):6.2f}x")
    finally:
        proc.terminate()
        proc.wait()
        serve.shutdown()
        ray.shutdown()
        subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    run_main(main)
