#!/usr/bin/env python3
"""Writes fixtures/bits: the vectors `sextant embed` gives on the portable path
(SEXTANT_CPU_PATH=portable) for every model and precision below, on fixtures/bits/texts.jsonl.
The test BitFixtureTests runs the same command on every path the CPU has and requires these
bits exactly, so a kernel whose order of operations depends on the CPU fails loudly.

Each fixture is <model>.<precision>.f32le: the vectors in input order, float32 little-endian.
The CLI prints each float in its shortest round-trip form; the conversion here is checked to
give the nearest float32 of that decimal (so the file holds exactly what the binary computed).

Usage (from the repository root, after a release build): tools/make-bit-fixtures.py [--check]
  --check   compare with the committed fixtures instead of writing them.
Only the Python standard library is needed.
"""
import argparse, json, os, struct, subprocess, sys
from fractions import Fraction

MODELS = [
    ("all-MiniLM-L6-v2", "models/all-MiniLM-L6-v2"),          # BERT (the default model)
    ("tiny-xlmr-embed", "fixtures/rerankers/tiny-xlmr-embed"),  # XLM-RoBERTa
    ("tiny-llama", "fixtures/decoders/tiny-llama"),
    ("tiny-mistral", "fixtures/decoders/tiny-mistral"),
    ("tiny-qwen2", "fixtures/decoders/tiny-qwen2"),
    ("tiny-qwen3", "fixtures/decoders/tiny-qwen3"),
]
PRECISIONS = ["f32", "bf16", "int8"]
OUT = "fixtures/bits"


def f32_bits(text):
    """The float32 nearest to the decimal `text`, as its bit pattern (checked, not assumed)."""
    bits = struct.unpack("<I", struct.pack("<f", float(text)))[0]
    exact = Fraction(text)
    def value(b):
        return Fraction(struct.unpack("<f", struct.pack("<I", b))[0])
    here = abs(exact - value(bits))
    for nb in (bits - 1, bits + 1):
        if 0 <= nb < 2**32 and ((nb >> 23) & 0xFF) != 0xFF and abs(exact - value(nb)) <= here:
            sys.exit(f"make-bit-fixtures: {text} does not round to one float32 unambiguously")
    return bits


def embed(folder, precision, texts_path):
    env = dict(os.environ, SEXTANT_CPU_PATH="portable")
    for k in ("SEXTANT_F32_PATH", "SEXTANT_BF16_PATH", "SEXTANT_I8_PATH", "SEXTANT_VECTOR_PATH"):
        env.pop(k, None)
    with open(texts_path, "rb") as f:
        out = subprocess.run([".build/release/sextant", "embed", "--model", folder, "--precision", precision],
                             stdin=f, capture_output=True, env=env, check=False)
    if out.returncode != 0:
        sys.exit(f"make-bit-fixtures: sextant embed failed for {folder} {precision}: {out.stderr.decode()}")
    rows = []
    for line in out.stdout.decode().splitlines():
        body = line[line.index("[") + 1:line.rindex("]")]
        rows.append([f32_bits(t) for t in body.split(",")])
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    texts_path = os.path.join(OUT, "texts.jsonl")
    if not os.path.exists(texts_path):
        golden = json.load(open("fixtures/embeddings/all-MiniLM-L6-v2.golden.json"))
        with open(texts_path, "w") as f:
            for c in golden["cases"]:
                f.write(json.dumps({"text": c["text"]}, ensure_ascii=False) + "\n")
    count = sum(1 for _ in open(texts_path))
    cpu = subprocess.run([".build/release/sextant", "cpu", "--json"], capture_output=True, env=dict(os.environ, SEXTANT_CPU_PATH="portable"))
    assert json.loads(cpu.stdout)["ceiling"] == "portable", cpu.stdout
    differ = 0
    for name, folder in MODELS:
        for precision in PRECISIONS:
            rows = embed(folder, precision, texts_path)
            assert len(rows) == count, (name, precision, len(rows), count)
            data = b"".join(struct.pack(f"<{len(r)}I", *r) for r in rows)
            path = os.path.join(OUT, f"{name}.{precision}.f32le")
            if args.check:
                same = os.path.exists(path) and open(path, "rb").read() == data
                differ += not same
                print(f"{path}: {'identical' if same else 'DIFFERS'}")
            else:
                open(path, "wb").write(data)
                print(f"{path}: {count} vectors of {len(rows[0])}")
    sys.exit(1 if differ else 0)


main()
