"""Sharded serving on Ray Serve: one deployment per shard collection (each replica runs its own
`sextant serve` on 127.0.0.1 and proxies to it) and a router deployment, the HTTP ingress, with
the routes and shapes of `sextant serve`.

    tools/ray/run serve --shards DIR1,DIR2 [--replicas R] [--port 8000] [--host 127.0.0.1]
                        [--api-key KEY] [--address auto]

/v1/search goes to every shard and the hits are merged by score (every shard has the same
model and metric). In hybrid mode (the default) each shard is asked for the dense and the
lexical leg separately (k = max(k, 100), Sextant's own depth), each leg is merged across shards,
and the legs are fused by reciprocal rank as Sextant does (k = 60, ties by first appearance,
dense leg first). /v1/embeddings, /v1/rerank and /openapi.json go to one shard replica;
GET /v1/documents/{id} asks every shard. A shard call whose replica dies is retried on another
(the answer's X-Sextant-Retries header counts such retries).
"""
import argparse
import asyncio
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from common import UserError, open_log, read_log, run_main, sextant_binary

RRF_K = 60            # Sextant's reciprocalRankFusion constant (Sources/Sextant/SearchTypes.swift)
HYBRID_DEPTH = 100    # Sextant's depth of each hybrid leg: max(k, 100) (Collection.search)
MAX_K = 1000          # sextant serve's limit on k
ATTEMPTS = 8          # tries of one shard call (replica deaths) before a 503

# `sextant serve` is a direct child of its replica, so Ray ends it with the replica (the raylet
# kills a dead worker's children, also after ray.kill). As a second guard, a watchdog shell
# waits on a pipe from the replica and kills the server when the pipe closes.
WATCHDOG = 'read -r _; kill "$0" 2>/dev/null'


def dumps(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def error_body(code, message):
    return dumps({"error": {"code": code, "message": message}})


# MARK: Merging (plain functions, tested without Ray)

def merge_by_score(legs, k):
    """The k best hits of several shards' lists by score, best first; equal scores keep shard
    order, then each shard's rank. Each hit gets `_key` (shard, chunk_id)."""
    merged = []
    for shard, hits in enumerate(legs):
        for rank, h in enumerate(hits):
            merged.append((-h["score"], shard, rank, dict(h, _key=(shard, h.get("chunk_id")))))
    merged.sort(key=lambda t: t[:3])
    return [t[3] for t in merged[:k]]


def reciprocal_rank_fusion(lists, k=RRF_K):
    """Sextant's reciprocalRankFusion: score = sum of 1 / (k + rank), ranks from 1; ties in
    order of first appearance (the dense list is first). Returns [(key, score)]."""
    scores, first = {}, {}
    for hits in lists:
        for rank, h in enumerate(hits):
            key = h["_key"]
            scores[key] = scores.get(key, 0.0) + 1 / (k + float(rank + 1))
            first.setdefault(key, len(first))
    return sorted(scores.items(), key=lambda kv: (-kv[1], first[kv[0]]))


def finish(hits, k):
    """Top k, ranks from 1, without the merge key."""
    out = []
    for i, h in enumerate(hits[:k]):
        h = {key: v for key, v in h.items() if key != "_key"}
        h["rank"] = i + 1
        out.append(h)
    return out


def fuse_hybrid(dense_legs, lexical_legs, k):
    """Hybrid hits as Sextant makes them, from per-shard dense and lexical legs of depth max(k, 100)."""
    depth = max(k, HYBRID_DEPTH)
    dense = merge_by_score(dense_legs, depth)
    lexical = merge_by_score(lexical_legs, depth)
    by_key = {}
    for h in lexical + dense:   # a hit found by both legs is taken from the dense one
        by_key[h["_key"]] = h
    fused = [dict(by_key[key], score=score) for key, score in reciprocal_rank_fusion([dense, lexical])]
    return finish(fused, k)


def wanted_k(body):
    """The request's k if it is valid for sextant serve, else None (the shards then answer the 400)."""
    k = body.get("k", 10)
    return k if isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= MAX_K else None


# MARK: Deployments

def make_app(shard_dirs, replicas=1, replica_cpus=1.0, router_cpus=0.0, model=None, api_key=None,
             binary=None):
    """The Serve application: Shard deployments (one per folder) bound into a Router."""
    from ray import serve
    from starlette.requests import Request
    from starlette.responses import Response
    binary = binary or sextant_binary()
    dirs = [str(Path(d).resolve()) for d in shard_dirs]

    @serve.deployment(max_ongoing_requests=256, health_check_period_s=2, health_check_timeout_s=10)
    class Shard:
        """One replica: a `sextant serve` subprocess on a free port, and a proxy to it."""

        def __init__(self, index):
            import aiohttp  # noqa: F401  (fail here, not at the first request)
            self.index = index
            self.log = open_log()
            cmd = [binary, "serve", "--index", index, "--host", "127.0.0.1", "--port", "0"]
            if model:
                cmd += ["--model", model]
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
            self.watchdog = subprocess.Popen(["sh", "-c", WATCHDOG, str(self.proc.pid)], stdin=subprocess.PIPE)
            self.port, deadline = None, time.time() + 120
            while self.port is None:
                text = read_log(self.log)[0]
                m = re.search(r"serving .* on http://127\.0\.0\.1:(\d+)", text)
                if m:
                    self.port = int(m.group(1))
                elif self.proc.poll() is not None or time.time() > deadline:
                    self.proc.kill()
                    raise RuntimeError(f"sextant serve --index {index} did not start: {text.strip()[-500:]}")
                else:
                    time.sleep(0.05)
            self.session = None

        async def call(self, method, path, bodies):
            """Forwards requests with these bodies (None: none) at once; returns [(status, body bytes)]."""
            import aiohttp
            import yarl
            if self.session is None:
                self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))
            url = yarl.URL(f"http://127.0.0.1:{self.port}{path}", encoded=True)   # path as the client sent it

            async def one(body):
                headers = {"Content-Type": "application/json"} if body is not None else {}
                async with self.session.request(method, url, data=body, headers=headers) as r:
                    return r.status, await r.read()
            return await asyncio.gather(*(one(b) for b in bodies))

        def check_health(self):
            if self.proc.poll() is not None:
                raise RuntimeError(f"sextant serve for {self.index} exited ({self.proc.returncode})")

        def __del__(self):
            try:
                self.proc.terminate()
                self.proc.wait(timeout=5)
                self.watchdog.stdin.close()
                self.log.close()
            except Exception:
                pass

    @serve.deployment(max_ongoing_requests=512)
    class Router:
        """The HTTP ingress: fans /v1/search out to every shard and merges; the rest goes to one."""

        def __init__(self, shards):
            self.shards = shards
            self.turn = itertools.count()

        async def one(self, shard, method, path, bodies, retried):
            """A call to one replica of a shard (one request per body: [(status, data)]); on a
            replica's death (or its server's), another try. retried[0] counts the retries."""
            last = None
            for attempt in range(ATTEMPTS):
                try:
                    return await self.shards[shard].call.remote(method, path, bodies)
                except Exception as e:   # RayActorError, ActorUnavailableError, a dead server...
                    last = e
                    # A shard that timed out is slow, not dead: another try would only wait again.
                    if isinstance(e, TimeoutError) or isinstance(getattr(e, "cause", None), TimeoutError):
                        break
                    retried[0] += 1
                    await asyncio.sleep(min(0.05 * 2 ** attempt, 1.0))
            raise ShardUnavailable(f"shard {shard} did not answer after {ATTEMPTS} tries: "
                                   f"{str(last).strip().splitlines()[-1] if str(last).strip() else type(last).__name__}")

        async def all(self, method, path, bodies, retried):
            """The same requests (one per body) to every shard: [[(status, data)] per shard]."""
            return await asyncio.gather(*(self.one(s, method, path, bodies, retried) for s in range(len(self.shards))))

        async def search(self, raw, retried):
            n = len(self.shards)
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                body = None
            hybrid = isinstance(body, dict) and body.get("mode", "hybrid") == "hybrid" and wanted_k(body)
            if hybrid:
                k = wanted_k(body)
                depth = max(k, HYBRID_DEPTH)
                legs = [dumps(dict(body, mode=m, k=depth)) for m in ("dense", "lexical")]
                per_shard = await self.all("POST", "/v1/search", legs, retried)
                answers = [a[0] for a in per_shard] + [a[1] for a in per_shard]   # dense legs, then lexical
            else:
                answers = [a[0] for a in await self.all("POST", "/v1/search", [raw], retried)]
            for status, data in answers:
                if status != 200:
                    return status, data   # a shard's error is the answer (the same on every shard)
            results = [json.loads(data) for _, data in answers]
            first = results[0]
            if hybrid:
                hits = fuse_hybrid([r["hits"] for r in results[:n]], [r["hits"] for r in results[n:]], k)
                return 200, dumps({"query": first["query"], "mode": "hybrid", "k": k, "hits": hits})
            k = first["k"]
            hits = finish(merge_by_score([r["hits"] for r in results], k), k)
            return 200, dumps(dict(first, hits=hits))

        async def document(self, path, retried):
            answers = [a[0] for a in await self.all("GET", path, [None], retried)]
            found = [a for a in answers if a[0] == 200]
            return found[0] if found else answers[0]

        async def __call__(self, request: Request) -> Response:
            path = request.scope["path"]
            raw = request.scope.get("raw_path", b"").decode("latin-1") or path   # percent-encoded
            root = request.scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root):] or "/"
                raw = raw[len(root):] if raw.startswith(root) else path
            method = request.method
            retried = [0]   # shard calls retried for this request (X-Sextant-Retries)
            try:
                if api_key and path != "/health":
                    auth = request.headers.get("authorization", "")
                    if auth[:7].lower() != "bearer " or auth[7:] != api_key:
                        return Response(error_body("unauthorized", "missing or wrong API key (Authorization: Bearer KEY)"),
                                        status_code=401, media_type="application/json")
                if path == "/health" and method == "GET":
                    status, data = 200, dumps({"status": "ok"})
                elif path == "/v1/search" and method == "POST":
                    status, data = await self.search(await request.body(), retried)
                elif path in ("/v1/embeddings", "/v1/rerank") and method == "POST":
                    status, data = (await self.one(next(self.turn) % len(self.shards), "POST", path, [await request.body()], retried))[0]
                elif path == "/openapi.json" and method == "GET":
                    status, data = (await self.one(0, "GET", path, [None], retried))[0]
                elif path.startswith("/v1/documents/") and method == "GET":
                    status, data = await self.document(raw, retried)
                else:
                    status, data = 404, error_body("not_found", f"{method} {path}: the sharded router serves POST /v1/search, "
                                                   "/v1/embeddings, /v1/rerank, GET /v1/documents/{id}, /health, /openapi.json")
            except ShardUnavailable as e:
                status, data = 503, error_body("shard_unavailable", str(e))
            headers = {"X-Sextant-Retries": str(retried[0])} if retried[0] else None
            return Response(data, status_code=status, media_type="application/json", headers=headers)

    shards = [Shard.options(name=f"shard-{i}", num_replicas=replicas, ray_actor_options={"num_cpus": replica_cpus})
              .bind(d) for i, d in enumerate(dirs)]
    return Router.options(ray_actor_options={"num_cpus": router_cpus}).bind(shards)


class ShardUnavailable(Exception):
    pass


def check_shards(dirs):
    for d in dirs:
        if not (Path(d) / "meta.sqlite").is_file():
            raise UserError(f"{d}: not a Sextant collection (no meta.sqlite); make the shards with tools/ray/run ingest")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="tools/ray/run serve", description=__doc__.split("\n\n")[0])
    ap.add_argument("--shards", required=True, help="comma-separated shard collection folders (readable on every node)")
    ap.add_argument("--replicas", type=int, default=1, help="replicas per shard (default 1)")
    ap.add_argument("--replica-cpus", type=float, default=1.0, help="CPUs each shard replica reserves (default 1)")
    ap.add_argument("--host", default="127.0.0.1", help="address of the HTTP ingress (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=8000, help="port of the HTTP ingress (default 8000)")
    ap.add_argument("--api-key", default=os.environ.get("SEXTANT_API_KEY"), help="require Authorization: Bearer KEY (default $SEXTANT_API_KEY)")
    ap.add_argument("--insecure", action="store_true", help="allow a non-loopback --host without an API key")
    ap.add_argument("--model", help="model folder (default: each collection's own)")
    ap.add_argument("--address", help="Ray cluster address (e.g. auto); default: a local Ray")
    ap.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    a = ap.parse_args(argv)
    binary = sextant_binary()
    dirs = [d for d in a.shards.split(",") if d]
    if not dirs:
        raise UserError("--shards: give at least one folder")
    check_shards(dirs)
    if a.replicas < 1:
        raise UserError("--replicas must be at least 1")
    if a.host not in ("127.0.0.1", "localhost", "::1") and not a.api_key and not a.insecure:
        raise UserError(f"--host {a.host} is not loopback: give --api-key KEY (or $SEXTANT_API_KEY), or --insecure")
    from ray import serve
    from raycluster import init_ray
    init_ray(a.address, a.num_cpus)
    serve.start(http_options={"host": a.host, "port": a.port})
    serve.run(make_app(dirs, a.replicas, a.replica_cpus, 0.0, a.model, a.api_key, binary), name="sextant", route_prefix="/")
    print(f"serving {len(dirs)} shard(s) x {a.replicas} replica(s) on http://{a.host}:{a.port} (Ctrl-C stops)", flush=True)
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(1))
    while not stop:
        time.sleep(0.5)
    serve.shutdown()


if __name__ == "__main__":
    run_main(main)
