"""Tests of the Ray tools in local mode (run by tools/ray/test.sh): bulk ingest on Ray Data and
sharded serving on Ray Serve, on ~2,000 synthetic documents. Prints what it measures and ends
with 'N passed, N failed'.

The order matters: later tests use the collections and servers the earlier ones made.
"""
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import default_model, model_fingerprint, sextant_binary, shard_of  # noqa: E402
import ingest  # noqa: E402

BIN = sextant_binary()
MODEL = default_model()
WORK = Path(tempfile.mkdtemp(prefix="sextant-ray-test-"))
QUERIES = 30
state = {}


# MARK: Helpers

def corpus(n=2000, seed=12):
    """Synthetic documents: 20 topics, each with its own words, plus common words; a few ids
    with non-ASCII characters and slashes; titles and metadata on some."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ter", "van", "sul", "dor", "pe", "ri", "nax", "bu", "zel", "tor", "fi", "gam", "ho"]
    words = sorted({"".join(rng.choice(syllables) for _ in range(rng.randint(2, 3))) for _ in range(900)})
    common = ["the", "a", "of", "and", "with", "flow", "wing", "pressure", "model", "study"]
    topics = [rng.sample(words, 25) for _ in range(20)]
    docs = []
    for i in range(n):
        t = rng.randrange(20)
        body = [rng.choice(topics[t]) if rng.random() < 0.6 else rng.choice(words + common) for _ in range(rng.randint(10, 40))]
        doc = {"id": f"d{i:04d}" if i % 97 else f"naïve/ü-{i}", "text": " ".join(body), "metadata": {"topic": t}}
        if i % 5 == 0:
            doc["title"] = " ".join(rng.sample(topics[t], 3))
        docs.append(doc)
    queries = []
    for q in range(QUERIES):
        t = q % 20
        queries.append(" ".join(rng.sample(topics[t], 3) + [rng.choice(common)]))
    return docs, queries


def embed_reference(texts):
    """One `sextant embed` run over all texts: float32 rows."""
    lines = "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts))
    r = subprocess.run([BIN, "embed", "--model", MODEL, "--threads", "2"], input=lines.encode(), capture_output=True)
    assert r.returncode == 0, r.stderr.decode()[-500:]
    out = [json.loads(l) for l in r.stdout.decode().splitlines()]
    assert [o["id"] for o in out] == list(range(len(texts)))
    return np.asarray([o["embedding"] for o in out], dtype=np.float32)


def stored_vectors(index):
    """id -> the float32 bytes stored in a collection (read from its SQLite file, read-only)."""
    db = sqlite3.connect(f"file:{index}/meta.sqlite?mode=ro", uri=True)
    rows = db.execute("SELECT d.path, c.vector FROM chunks c JOIN documents d ON d.id = c.document_id").fetchall()
    db.close()
    return {path[4:]: bytes(v) for path, v in rows}


def listed_ids(index):
    """Every document id of a collection, from `sextant docs list --json`, page by page."""
    ids, after = [], 0
    while True:
        r = subprocess.run([BIN, "docs", "list", "--index", str(index), "--json", "--limit", "500", "--after", str(after)],
                           capture_output=True, text=True, check=True)
        page = json.loads(r.stdout)
        ids += [d["path"][4:] for d in page["documents"]]
        if page["next_after"] is None:
            return ids
        after = page["next_after"]


def check_shards(out, docs, reference):
    """Every id exactly once over the shards, in its hash's shard, with the reference vector."""
    shards = sorted(p for p in Path(out).glob("shard-*") if p.is_dir())
    seen = []
    for s, index in enumerate(shards):
        ids = listed_ids(index)
        assert all(shard_of(i, len(shards)) == s for i in ids), f"{index}: a document in the wrong shard"
        seen += ids
        stored = stored_vectors(index)
        assert sorted(stored) == sorted(ids)
        for i in ids:
            assert stored[i] == reference[i], f"document {i}: stored vector differs from the single sextant embed run"
    assert len(seen) == len(set(seen)), f"{len(seen) - len(set(seen))} ids twice"
    assert set(seen) == {d["id"] for d in docs}, "ids missing or extra"
    return [len(listed_ids(p)) for p in shards]


def start_sextant_serve(index):
    log = open(WORK / f"serve-{Path(index).name}.log", "w+")
    proc = subprocess.Popen([BIN, "serve", "--index", str(index), "--port", "0"], stdout=log, stderr=log)
    for _ in range(600):
        m = re.search(r"on http://127\.0\.0\.1:(\d+)", Path(log.name).read_text())
        if m:
            return proc, f"http://127.0.0.1:{m.group(1)}"
        assert proc.poll() is None, Path(log.name).read_text()
        time.sleep(0.05)
    raise AssertionError("sextant serve did not start")


def free_port():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(url, body, timeout=60):
    r = requests.post(url, data=body if isinstance(body, (bytes, str)) else json.dumps(body), timeout=timeout)
    return r.status_code, r.json()


def search(url, q, **kw):
    status, body = post(f"{url}/v1/search", dict(query=q, k=10, text="none", **kw))
    assert status == 200, body
    return body["hits"]


# MARK: Tests without Ray

def test_cli_errors():
    """Bad input is one line on stderr and exit status 1, before Ray starts."""
    bad = WORK / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "fine"}\n{"id": "b", "text": \n')
    dup = WORK / "dup.jsonl"
    dup.write_text('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n')
    run = str(HERE / "run")
    cases = [
        (["ingest", "--input", str(WORK / "missing.jsonl"), "--shards", "2", "--out", str(WORK / "o1")], {}, "no such file"),
        (["ingest", "--input", str(bad), "--shards", "2", "--out", str(WORK / "o2")], {}, "line 2: not valid JSON"),
        (["ingest", "--input", str(dup), "--shards", "2", "--out", str(WORK / "o3")], {}, "given twice"),
        (["ingest", "--input", str(bad), "--shards", "2", "--out", str(WORK / "o4")], {"SEXTANT_BIN": "/nonexistent/sextant"}, "no sextant binary"),
        (["serve", "--shards", str(WORK / "no-shard")], {}, "not a Sextant collection"),
    ]
    for args, env, expected in cases:
        t = time.time()
        r = subprocess.run([run] + args, capture_output=True, text=True, env=dict(os.environ, **env))
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1 and expected in lines[0] and lines[0].startswith("error: "), (args, r.returncode, r.stderr)
        print(f"    {' '.join(args[:1])} ... -> {lines[0]} ({time.time() - t:.1f} s)")
    assert not (WORK / "o2").exists()


def test_merge_functions():
    """The router's merging, on hand-made hits (no Ray)."""
    import serve as sharded
    h = lambda cid, score: {"chunk_id": cid, "score": score, "path": f"doc:{cid}", "rank": 0}
    merged = sharded.merge_by_score([[h(1, 0.9), h(2, 0.5)], [h(1, 0.7), h(3, 0.5)]], 3)
    assert [(m["_key"], m["score"]) for m in merged] == [((0, 1), 0.9), ((1, 1), 0.7), ((0, 2), 0.5)]  # tie: shard 0 first
    # Hybrid: d in both legs wins; a (dense 1st) and c (lexical 1st) tie and keep first appearance (dense first).
    dense = [[h(10, 0.9), h(11, 0.8)], [h(12, 0.1)]]
    lexical = [[h(13, 9.0), h(11, 5.0)], []]
    fused = sharded.fuse_hybrid(dense, lexical, 10)
    assert [f["chunk_id"] for f in fused] == [11, 10, 13, 12]
    assert fused[0]["score"] == 1 / 62 + 1 / 62 and fused[1]["score"] == fused[2]["score"] == 1 / 61
    assert [f["rank"] for f in fused] == [1, 2, 3, 4] and "_key" not in fused[0]
    assert sharded.wanted_k({"k": True}) is None and sharded.wanted_k({}) == 10 and sharded.wanted_k({"k": 1001}) is None


def test_reference():
    docs, queries = corpus()
    texts = [f"{d['title']}. {d['text']}" if d.get("title") else d["text"] for d in docs]
    t = time.time()
    vectors = embed_reference(texts)
    print(f"    single sextant embed of {len(docs)} documents: {time.time() - t:.1f} s")
    path = WORK / "corpus.jsonl"
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
    state.update(docs=docs, queries=queries, corpus=path, texts=texts,
                 reference={d["id"]: vectors[i].tobytes() for i, d in enumerate(docs)})
    # The single collection: every document, the same vectors.
    lines = WORK / "single.jsonl"
    lines.write_text("".join(json.dumps({"id": d["id"], "text": texts[i], "metadata": d["metadata"],
                                         **({"title": d["title"]} if d.get("title") else {})}, ensure_ascii=False) + "\n"
                             for i, d in enumerate(docs)))
    np.save(WORK / "single.npy", vectors)
    subprocess.run([BIN, "import", str(lines), "--vectors", str(WORK / "single.npy"), "--model-sha256",
                    model_fingerprint(MODEL), "--index", str(WORK / "single")], check=True, capture_output=True)
    assert len(listed_ids(WORK / "single")) == len(docs)


# MARK: Ray Data

def start_ray():
    import ray
    from raycluster import init_ray
    t = time.time()
    init_ray(num_cpus=2, quiet=True)
    print(f"    ray.init(num_cpus=2): {time.time() - t:.1f} s")
    assert ray.cluster_resources()["CPU"] == 2


def test_ingest():
    start_ray()
    t = time.time()
    m = ingest.ingest(state["corpus"], 2, WORK / "run-a", workers=2, threads=1, progress=False)
    counts = check_shards(WORK / "run-a", state["docs"], state["reference"])
    print(f"    2 workers, 2 shards: {m['documents']} documents {counts}, embedding {m['seconds']['embed']} s "
          f"({m['documents'] / m['seconds']['embed']:.0f} docs/s), whole job {time.time() - t:.1f} s; "
          f"every id once, vectors bit-identical to one sextant embed run")
    assert m["documents"] == len(state["docs"]) and sum(counts) == len(state["docs"])


def test_ingest_with_a_worker_killed():
    marker = WORK / "crashed"
    t = time.time()
    m = ingest.ingest(state["corpus"], 2, WORK / "run-b", workers=2, threads=1, crash_marker=str(marker), progress=False)
    assert marker.exists(), "no worker was killed"
    counts = check_shards(WORK / "run-b", state["docs"], state["reference"])
    for s in ("shard-00", "shard-01"):
        a = (WORK / "run-a/vectors" / f"{s}.npy").read_bytes()
        assert a == (WORK / "run-b/vectors" / f"{s}.npy").read_bytes(), f"{s}: vectors differ from the run without a crash"
        assert (WORK / "run-a/vectors" / f"{s}.jsonl").read_bytes() == (WORK / "run-b/vectors" / f"{s}.jsonl").read_bytes()
    print(f"    a worker called os._exit(1) on its first batch; Ray restarted it and retried: {counts} documents, "
          f"the same vectors and shards as without the crash ({time.time() - t:.1f} s, rows returned twice: {m['rows_returned_twice']})")


# MARK: Ray Serve

def test_serve_start():
    from ray import serve
    import serve as sharded
    t = time.time()
    single_proc, single_url = start_sextant_serve(WORK / "single")
    state.update(single_proc=single_proc, single=single_url)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    shards = [str(WORK / "run-a/shard-00"), str(WORK / "run-a/shard-01")]
    serve.run(sharded.make_app(shards, replicas=2, replica_cpus=0), name="sharded", route_prefix="/")
    serve.run(sharded.make_app([str(WORK / "single")], replicas=1, replica_cpus=0), name="one", route_prefix="/one")
    state.update(router=f"http://127.0.0.1:{port}", one=f"http://127.0.0.1:{port}/one")
    assert requests.get(state["router"] + "/health", timeout=10).json() == {"status": "ok"}
    print(f"    sextant serve on the single collection, Serve apps up (2 shards x 2 replicas; 1 shard): {time.time() - t:.1f} s")


def test_exact_merge_equals_single():
    worst = 0.0
    for q in state["queries"]:
        mine = search(state["router"], q, mode="dense", exact=True)
        ref = search(state["single"], q, mode="dense", exact=True)
        assert [h["path"] for h in mine] == [h["path"] for h in ref], q
        assert [h["rank"] for h in mine] == list(range(1, 11))
        worst = max(worst, max(abs(a["score"] - b["score"]) for a, b in zip(mine, ref)))
    assert worst <= 1e-6
    print(f"    {QUERIES} queries, exact top 10 through 2 shards == single collection's; largest score difference {worst:.1e}")


def test_hnsw_recall():
    def recall(url):
        total = 0
        for q in state["queries"]:
            truth = {h["path"] for h in search(state["single"], q, mode="dense", exact=True)}
            total += len(truth & {h["path"] for h in search(url, q, mode="dense")}) / 10
        return total / QUERIES
    sharded, single = recall(state["router"]), recall(state["single"])
    print(f"    HNSW recall@10 against exact: 2 shards {sharded:.4f}, single collection {single:.4f}")
    assert sharded >= single - 0.01


def test_hybrid_fusion_matches_sextant():
    # The router over one shard must give sextant serve's own hybrid answer exactly: same
    # legs, same fusion constant and tie rule.
    for q in state["queries"]:
        for exact in (True, False):
            mine = search(state["one"], q, exact=exact)
            ref = search(state["single"], q, exact=exact)
            assert [(h["path"], h["rank"], h["score"]) for h in mine] == [(h["path"], h["rank"], h["score"]) for h in ref], q
    # Two shards: dense leg merged exactly; BM25 uses each shard's own statistics, so the
    # lexical leg (and the fused list) can differ a little from one collection's.
    overlaps = {}
    for mode in ("hybrid", "lexical"):
        o = [len({h["path"] for h in search(state["router"], q, mode=mode, exact=True)} &
                 {h["path"] for h in search(state["single"], q, mode=mode, exact=True)}) / 10 for q in state["queries"]]
        overlaps[mode] = sum(o) / len(o)
    print(f"    router over 1 shard == sextant serve in hybrid mode ({QUERIES} queries x exact/HNSW); 2 shards: top-10 "
          f"overlap with the single collection hybrid {overlaps['hybrid']:.3f}, lexical {overlaps['lexical']:.3f}")
    assert overlaps["hybrid"] >= 0.8 and overlaps["lexical"] >= 0.8


def test_same_shapes_and_errors():
    r, s = state["router"], state["single"]
    full = [post(f"{u}/v1/search", {"query": state["queries"][0], "k": 3}) for u in (r, s)]
    assert full[0][0] == 200 and sorted(full[0][1]) == sorted(full[1][1]) == ["hits", "k", "mode", "query"]
    assert sorted(full[0][1]["hits"][0]) == sorted(full[1][1]["hits"][0])   # snippet, metadata, offsets...
    for body in ['{"query": ""}', '{bad json', '{"query": "x", "k": 0}', '{"query": "x", "k": 5000, "mode": "dense"}',
                 '{"query": "x", "mode": "fuzzy"}', '{"query": "x", "where": {"topic": {"$gt": "soon"}}}', '[1, 2]']:
        assert post(f"{r}/v1/search", body) == post(f"{s}/v1/search", body), body
    emb = {"input": ["first text", "second"], "model": "x"}
    assert post(f"{r}/v1/embeddings", emb) == post(f"{s}/v1/embeddings", emb)
    rr = {"query": state["queries"][1], "documents": state["texts"][:5], "top_n": 3}
    assert post(f"{r}/v1/rerank", rr) == post(f"{s}/v1/rerank", rr)
    assert post(f"{r}/v1/embeddings", {"input": []}) == post(f"{s}/v1/embeddings", {"input": []})
    doc_id = state["docs"][97]["id"]
    got = requests.get(f"{r}/v1/documents/{requests.utils.quote(doc_id, safe='')}", timeout=10)
    assert got.status_code == 200 and got.json()["id"] == doc_id
    assert requests.get(f"{r}/v1/documents/nope", timeout=10).status_code == 404
    assert requests.get(f"{r}/v1/collections/info", timeout=10).status_code == 404
    print("    shapes of /v1/search, errors (400s passed through), /v1/embeddings, /v1/rerank equal sextant serve's")


def replica_names(part):
    import ray
    return [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
            if a["namespace"] == "serve" and part in a["name"]]


def test_kill_a_replica_mid_run():
    import ray
    queries = [state["queries"][i % QUERIES] + f" {i}" for i in range(200)]
    expected = {q: search(state["single"], q, mode="dense", exact=True) for q in queries[:QUERIES]}
    replicas = replica_names("sharded#shard-0#")
    assert len(replicas) == 2, replicas
    victim = ray.get_actor(replicas[0], namespace="serve")
    done, failures, retried, killed = [], [], [], threading.Event()
    kill_lock = threading.Lock()

    def one(q):
        try:
            r = requests.post(f"{state['router']}/v1/search", json=dict(query=q, k=10, mode="dense", exact=True, text="none"), timeout=60)
            status, body = r.status_code, r.json()
            retried.append(int(r.headers.get("x-sextant-retries", 0)))
            if status != 200:
                failures.append((q, status, body))
            elif q in expected and [h["path"] for h in body["hits"]] != [h["path"] for h in expected[q]]:
                failures.append((q, "different hits"))
        except Exception as e:
            failures.append((q, repr(e)))
        with kill_lock:   # exactly one thread kills, at the 40th answer
            done.append(q)
            kill_now = len(done) >= 40 and not killed.is_set()
            if kill_now:
                killed.set()
        if kill_now:
            ray.kill(victim, no_restart=True)

    t = time.time()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, queries))
    assert killed.is_set()
    print(f"    200 queries, 8 at a time, one of shard 0's 2 replicas killed after 40: {len(failures)} failed, "
          f"{sum(1 for n in retried if n)} answered after a retry on another replica ({time.time() - t:.1f} s)")
    assert not failures, failures[:3]
    # The killed replica's sextant serve went with it; Serve started a replacement.
    from ray import serve
    for _ in range(150):
        healthy = serve.status().applications["sharded"].deployments["shard-0"].status == "HEALTHY"
        if healthy and len(replica_names("sharded#shard-0#")) == 2:
            break
        time.sleep(0.2)
    # The killed replica's server exits shortly after it: poll instead of one fixed wait.
    for _ in range(50):
        running = subprocess.run(["pgrep", "-f", f"^{BIN} serve --index {WORK}/run-a/shard-00 "],
                                 capture_output=True, text=True).stdout.split()
        if len(running) == 2:
            break
        time.sleep(0.2)
    print(f"    afterwards: shard 0 healthy again with {len(replica_names('sharded#shard-0#'))} replicas, "
          f"{len(running)} sextant serve processes on it")
    assert len(running) == 2, "the killed replica's sextant serve is still running (or none replaced it)"


# MARK: A simulated two-node cluster

def test_two_node_cluster():
    """ray.cluster_utils.Cluster: two raylets of 1 CPU each on this machine. Two 1-CPU embedding
    workers must land on both nodes; two 1-CPU shard replicas likewise."""
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster
    import serve as sharded
    from raycluster import runtime_env
    serve.shutdown()
    ray.shutdown()
    t = time.time()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    state["cluster"] = cluster
    ray.init(address=cluster.address, runtime_env=runtime_env(), log_to_driver=False, logging_level="WARNING")
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    print(f"    two-node cluster up: {time.time() - t:.1f} s")
    docs = state["docs"][:600]
    path = WORK / "corpus-600.jsonl"
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
    m = ingest.ingest(path, 2, WORK / "run-c", workers=2, threads=1, progress=False)
    check_shards(WORK / "run-c", docs, state["reference"])
    print(f"    ingest of {len(docs)} documents on {m['nodes']} nodes: every id once, vectors bit-identical")
    assert m["nodes"] == 2
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(sharded.make_app([str(WORK / "run-c/shard-00"), str(WORK / "run-c/shard-01")], replicas=1, replica_cpus=1),
              name="cluster", route_prefix="/")
    single_proc, single_url = start_sextant_serve_import(WORK / "single-600", docs)
    try:
        for q in state["queries"]:
            mine = search(f"http://127.0.0.1:{port}", q, mode="dense", exact=True)
            ref = search(single_url, q, mode="dense", exact=True)
            assert [h["path"] for h in mine] == [h["path"] for h in ref], q
    finally:
        single_proc.terminate()
        single_proc.wait()
    print(f"    2 shards served from 2 nodes: exact top 10 == one collection's for {QUERIES} queries ({time.time() - t:.1f} s)")


def start_sextant_serve_import(index, docs):
    """A single collection of these documents (reference vectors), served by sextant serve."""
    rows = [state["texts"][i] for i in range(len(docs))]
    lines = WORK / f"{index.name}.jsonl"
    lines.write_text("".join(json.dumps({"id": d["id"], "text": t}, ensure_ascii=False) + "\n" for d, t in zip(docs, rows)))
    vecs = np.frombuffer(b"".join(state["reference"][d["id"]] for d in docs), dtype=np.float32).reshape(len(docs), -1)
    np.save(WORK / f"{index.name}.npy", vecs)
    subprocess.run([BIN, "import", str(lines), "--vectors", str(WORK / f"{index.name}.npy"), "--model-sha256",
                    model_fingerprint(MODEL), "--index", str(index)], check=True, capture_output=True)
    return start_sextant_serve(index)


def main():
    tests = [test_cli_errors, test_merge_functions, test_reference, test_ingest, test_ingest_with_a_worker_killed, test_serve_start,
             test_exact_merge_equals_single, test_hnsw_recall, test_hybrid_fusion_matches_sextant,
             test_same_shapes_and_errors, test_kill_a_replica_mid_run, test_two_node_cluster]
    passed = failed = 0
    started = time.time()
    print(f"Ray tests in {WORK} (sextant: {BIN})", flush=True)
    try:
        for test in tests:
            t = time.time()
            try:
                test()
                passed += 1
                print(f"ok   {test.__name__} ({time.time() - t:.1f} s)", flush=True)
            except Exception:
                failed += 1
                print(f"FAIL {test.__name__} ({time.time() - t:.1f} s)\n{traceback.format_exc()}", flush=True)
                if test in (test_reference, test_ingest, test_serve_start):
                    break   # what follows needs it
    finally:
        import ray
        if ray.is_initialized():
            from ray import serve
            try:
                serve.shutdown()
            except Exception:
                pass
            ray.shutdown()
        if "cluster" in state:
            state["cluster"].shutdown()
        if "single_proc" in state:
            state["single_proc"].terminate()
            state["single_proc"].wait()
    print(f"whole run {time.time() - started:.1f} s")
    if failed == 0 and os.environ.get("SEXTANT_RAY_KEEP") != "1":
        subprocess.run(["rm", "-rf", str(WORK)])
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
