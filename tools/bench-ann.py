#!/usr/bin/env python3
"""Side-by-side ANN benchmark: Sextant's HNSW index (through `sextant bench-ann`) and hnswlib.

Same M and efConstruction, one thread each. Reports build time, recall@10 at several ef,
queries per second, bytes per vector in memory and on disk, recall after deleting 10/50/90 %
at random and after deleting one whole cluster, and the ratios to hnswlib.
Run through tools/bench-ann (which makes the venv and builds the binary)."""
import argparse, ctypes, json, os, subprocess, sys, tempfile, time
import numpy as np
import hnswlib

REPEAT = 3
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_bytes():
    # Give freed heap pages back first, so that new allocations show up as RSS growth.
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def clustered(n, nq, d, clusters, seed, latent=32):
    """Clustered vectors of low intrinsic dimension, like embeddings: a cluster centre, plus a
    point of a shared `latent`-dimensional subspace, plus a little isotropic noise."""
    rng = np.random.default_rng(seed)
    centres = 2 * rng.standard_normal((clusters, d)).astype(np.float32)
    basis = (rng.standard_normal((latent, d)) / np.sqrt(latent)).astype(np.float32)
    labels = rng.integers(0, clusters, n + nq)
    z = rng.standard_normal((n + nq, latent)).astype(np.float32)
    x = centres[labels] + z @ basis + 0.2 * rng.standard_normal((n + nq, d)).astype(np.float32)
    return x[:n].astype(np.float32), x[n:].astype(np.float32), labels[:n]


def exact(base, queries, k, metric, skip=None):
    if metric == "cosine":
        b = base / np.linalg.norm(base, axis=1, keepdims=True)
        q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        score = -(q @ b.T)
    elif metric == "ip":
        score = -(queries @ base.T)
    else:
        score = (queries ** 2).sum(1)[:, None] - 2 * queries @ base.T + (base ** 2).sum(1)[None, :]
    if skip is not None:
        score[:, skip] = np.inf
    idx = np.argpartition(score, k, axis=1)[:, :k]
    order = np.take_along_axis(score, idx, 1).argsort(1)
    return np.take_along_axis(idx, order, 1)


def recall(found, truth, k=10):
    return float(np.mean([len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth)]))


def run_hnswlib(base, queries, truth, metric, m, efc, efs, skip_sets):
    n, d = base.shape
    space = {"cosine": "cosine", "ip": "ip", "l2": "l2"}[metric]
    before = rss_bytes()
    index = hnswlib.Index(space=space, dim=d)
    index.init_index(max_elements=n, M=m, ef_construction=efc, random_seed=100)
    index.set_num_threads(1)
    t = time.perf_counter()
    index.add_items(base, np.arange(n), num_threads=1)
    build = time.perf_counter() - t
    mem = rss_bytes() - before
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "h.bin")
        index.save_index(path)
        disk = os.path.getsize(path)
    rows = []

    def measure(scenario, truth):
        for ef in efs:
            index.set_ef(max(ef, 10))
            secs = float("inf")
            for _ in range(REPEAT):  # the fastest of REPEAT passes, as `sextant bench-ann` does
                found = []
                t = time.perf_counter()
                for q in queries:
                    labels, _ = index.knn_query(q, k=10, num_threads=1)
                    found.append(labels[0])
                secs = min(secs, time.perf_counter() - t)
            rows.append(dict(scenario=scenario, ef=ef, recall_at_10=recall(found, truth), qps=len(queries) / secs,
                             build_seconds=build, bytes_per_vector=mem / n, bytes_per_vector_disk=disk / n))

    measure("full", truth)
    for scenario, ids, t_truth, restore in skip_sets:
        for i in ids:
            index.mark_deleted(int(i))
        measure(scenario, t_truth)
        if restore:
            for i in ids:
                index.unmark_deleted(int(i))
    return rows


def run_sextant(binary, base_path, query_path, gt_path, metric, m, efc, efs, group_path):
    cmd = [binary, "bench-ann", "--base", base_path, "--queries", query_path, "--gt", gt_path, "--metric", metric,
           "--m", str(m), "--ef-construction", str(efc), "--ef", ",".join(map(str, efs)), "--json",
           "--delete", "0.1,0.5,0.9"]
    if group_path:
        cmd += ["--delete-ids", group_path]
    print("$ " + " ".join(cmd), flush=True)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def qps_at(rows, scenario, target=0.95):
    """qps at recall@10 = target, interpolated linearly between the bracketing ef values."""
    pts = sorted((r["recall_at_10"], r["qps"]) for r in rows if r["scenario"] == scenario)
    for (r0, q0), (r1, q1) in zip(pts, pts[1:]):
        if r0 <= target <= r1:
            return q0 + (q1 - q0) * (target - r0) / (r1 - r0) if r1 > r0 else q1
    if pts and pts[0][0] >= target:
        return pts[0][1]
    return None


def report(name, sx, hl):
    print(f"\n== {name} ==")
    full_s = [r for r in sx if r["scenario"] == "full"]
    full_h = [r for r in hl if r["scenario"] == "full"]
    s0, h0 = full_s[0], full_h[0]
    print(f"build seconds        sextant {s0['build_seconds']:.2f}   hnswlib {h0['build_seconds']:.2f}   ratio {s0['build_seconds'] / h0['build_seconds']:.2f}")
    print(f"bytes/vector memory  sextant {s0['bytes_per_vector']:.0f}   hnswlib {h0['bytes_per_vector']:.0f} (RSS growth)   ratio {s0['bytes_per_vector'] / h0['bytes_per_vector']:.2f}")
    print(f"  (sextant with the full vectors it rescores from, kept outside the index: {s0['bytes_per_vector_with_full_vectors']:.0f})")
    print(f"bytes/vector disk    sextant {s0['bytes_per_vector_disk']:.0f}   hnswlib {h0['bytes_per_vector_disk']:.0f}   ratio {s0['bytes_per_vector_disk'] / h0['bytes_per_vector_disk']:.2f}")
    scenarios = []
    for r in sx:
        if r["scenario"] not in scenarios:
            scenarios.append(r["scenario"])
    print(f"{'scenario':<22}{'ef':>5}{'recall sx':>11}{'recall hl':>11}{'qps sx':>10}{'qps hl':>10}{'qps ratio':>11}")
    for sc in scenarios:
        hs = {r["ef"]: r for r in hl if r["scenario"] == sc or (sc.startswith("delete_group") and r["scenario"].startswith("delete_group"))}
        for r in (r for r in sx if r["scenario"] == sc):
            h = hs.get(r["ef"])
            if h:
                print(f"{sc:<22}{r['ef']:>5}{r['recall_at_10']:>11.4f}{h['recall_at_10']:>11.4f}{r['qps']:>10.0f}{h['qps']:>10.0f}{r['qps'] / h['qps']:>11.2f}")
    a, b = qps_at(sx, "full"), qps_at(hl, "full")
    if a and b:
        print(f"qps at recall@10=0.95: sextant {a:.0f}, hnswlib {b:.0f}, ratio {a / b:.2f}")
    else:
        print(f"qps at recall@10=0.95: sextant {a}, hnswlib {b} (not reached in the ef range)")


def bench(name, base, queries, groups, metric, args, binary, work):
    n, d = base.shape
    print(f"\n## {name}: {n} x {d}, {len(queries)} queries, metric {metric}, M={args.m}, efConstruction={args.ef_construction}", flush=True)
    base_path, query_path = os.path.join(work, f"{name}-base.npy"), os.path.join(work, f"{name}-queries.npy")
    gt_path, group_path = os.path.join(work, f"{name}-gt.npy"), os.path.join(work, f"{name}-group.npy")
    np.save(base_path, base)
    np.save(query_path, queries)
    t = time.perf_counter()
    truth = exact(base, queries, 10, metric)
    np.save(gt_path, truth.astype(np.int64))
    print(f"exact ground truth in {time.perf_counter() - t:.1f} s", flush=True)
    group = None
    if groups is not None:
        group = np.nonzero(groups == 0)[0]
        np.save(group_path, group.astype(np.int64))
    # Deletion sets for hnswlib, the same as the CLI's: the group first (then restored), then
    # cumulative random deletions in the CLI's order (an LCG shuffle, reproduced here).
    order = list(range(n))
    state = 12345
    for i in range(n - 1, 0, -1):
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        j = (state >> 33) % (i + 1)
        order[i], order[j] = order[j], order[i]
    skip_sets = []
    if group is not None:
        skip_sets.append((f"delete_group_{len(group)}", group, exact(base, queries, 10, metric, skip=group), True))
    done = 0
    for f in (0.1, 0.5, 0.9):
        target = int(f * n)
        ids = np.array(order[done:target])
        all_deleted = np.array(order[:target])
        skip_sets.append((f"delete_{int(round(f * 100))}%", ids, exact(base, queries, 10, metric, skip=all_deleted), False))
        done = target
    sx = run_sextant(binary, base_path, query_path, gt_path, metric, args.m, args.ef_construction, args.ef, group_path if group is not None else None)
    for line in sx:
        print(json.dumps(line))
    hl = run_hnswlib(base, queries, truth, metric, args.m, args.ef_construction, args.ef, skip_sets)
    for line in hl:
        print(json.dumps(dict(peer="hnswlib", **line)))
    report(name, sx, hl)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, ".build-hnsw/release/sextant"))
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--clusters", type=int, default=100)
    ap.add_argument("--metric", default="cosine")
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--ef", type=lambda s: [int(x) for x in s.split(",")], default=[10, 20, 40, 80, 160])
    ap.add_argument("--work", default=os.path.join(ROOT, ".build-hnsw/bench-ann"))
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--skip-real", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    if not args.skip_synthetic:
        base, queries, labels = clustered(args.n, args.queries, args.dim, args.clusters, seed=2024)
        bench("clustered", base, queries, labels, args.metric, args, args.binary, args.work)
    embedder = os.path.join(ROOT, ".build/release/sextant")
    corpus = os.path.join(ROOT, "../shared/datasets/cranfield/corpus.jsonl")
    if not args.skip_real and os.path.exists(embedder) and os.path.exists(corpus):
        docs = [json.loads(line) for line in open(corpus)]
        texts = "".join(json.dumps({"text": (d.get("title", "") + ". " + d.get("text", "")).strip()}) + "\n" for d in docs)
        t = time.perf_counter()
        out = subprocess.run([embedder, "embed"], input=texts, capture_output=True, text=True, check=True, cwd=ROOT).stdout
        emb = np.array([json.loads(l)["embedding"] for l in out.splitlines()], dtype=np.float32)
        print(f"\nembedded {len(emb)} cranfield passages with {embedder} in {time.perf_counter() - t:.1f} s", flush=True)
        qfile = os.path.join(ROOT, "../shared/datasets/cranfield/queries.jsonl")
        qtexts = "".join(json.dumps({"text": json.loads(l)["text"]}) + "\n" for l in open(qfile))
        qout = subprocess.run([embedder, "embed", "--query"], input=qtexts, capture_output=True, text=True, check=True, cwd=ROOT).stdout
        qemb = np.array([json.loads(l)["embedding"] for l in qout.splitlines()], dtype=np.float32)
        # Clusters for the group deletion: the passages nearest to one random passage (10 %).
        centre = emb[0] / np.linalg.norm(emb[0])
        near = np.argsort(-(emb / np.linalg.norm(emb, axis=1, keepdims=True)) @ centre)[: len(emb) // 10]
        labels = np.ones(len(emb), dtype=np.int64)
        labels[near] = 0
        bench("cranfield", emb, qemb, labels, "cosine", args, args.binary, args.work)
    elif not args.skip_real:
        print("\n(no .build/release/sextant or no cranfield corpus: real-embedding dataset skipped)")


if __name__ == "__main__":
    main()
