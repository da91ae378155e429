#!/usr/bin/env python3
"""Builds the decoder-only (LLM embedder) fixtures of issue 3 and records reference outputs.

  A. Five BPE tokenizers trained with HF `tokenizers` (byte-level and SentencePiece-style):
       fixtures/decoders/tokenizers/<style>/{tokenizer.json,tokenizer_config.json}
       fixtures/tokenizer/<style>.golden.json        [{"text", "ids"}], add_special_tokens=True
  B. Tiny random-weight decoder models (Mistral, Llama, Qwen2, Qwen3, a sharded bare Qwen3Model):
       fixtures/decoders/<name>/{config.json,*.safetensors,tokenizer.json,tokenizer_config.json}
  C. transformers' float32 reference embeddings for passages, bge-en-icl queries, instruction
     queries and GIRCSE refinement:
       fixtures/decoders/<name>.golden.json

Run through tools/make-decoder-fixtures.sh (it picks the venv's python). Offline. Deterministic:
rerunning rewrites byte-identical files. The tokenizers are trained on the repository's text as
of the pinned commit TRAIN_COMMIT (read with `git show`, so later edits of the working tree do
not change them) plus fixtures/tokenizer/golden-strings.json (written by tools/make-goldens.py).

Usage: make-decoder-fixtures.py [--check]   (--check: regenerate in memory, compare, write nothing)
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixture_json import Rng, pretty_json, render_json  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAYON_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures"
DEC = FIX / "decoders"
TOK_DIR = DEC / "tokenizers"
STRINGS_FILE = FIX / "tokenizer" / "golden-strings.json"

# The repository text the tokenizers are trained on: README.md, Sources/**/*.swift, tools/* at
# this commit ("Declare the VectorIndex target"). Pinned so that the fixtures do not change
# whenever a source file does.
TRAIN_COMMIT = "b51b346c2967106bd1624e11cb57ed880e564425"
MAX_LEN = 512

QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
               r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
STYLES = ["bytelevel-qwen", "bytelevel-qwen3emb", "gpt2", "sp-metaspace", "sp-legacy"]
BYTELEVEL_VOCAB = 1000   # model vocab (256 byte symbols + merges); added tokens come on top
SP_VOCAB = 1000          # model vocab: <unk> <s> </s>, 256 <0xXX>, 120 characters, merges
SP_ALPHABET = 120        # characters kept; the rest of the text's characters go to byte fallback


# --------------------------------------------------------------------------------------------
# Output helpers (render_json and pretty_json: tools/fixture_json.py)
class Writer:
    """Collects every output file; writes them, or (--check) compares them with the tree."""

    def __init__(self, check):
        self.check = check
        self.files = {}

    def add(self, path, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.files[Path(path)] = data

    def add_dir(self, src, dest):
        for p in sorted(Path(src).iterdir()):
            self.add(Path(dest) / p.name, p.read_bytes())

    def finish(self):
        if self.check:
            bad = [p for p, d in self.files.items() if not p.exists() or p.read_bytes() != d]
            for p in bad:
                print(f"DIFFERS: {p.relative_to(ROOT)}")
            print(f"check: {len(self.files) - len(bad)}/{len(self.files)} files identical")
            return not bad
        for d in sorted({p.parent for p in self.files if p.parent.parent == DEC and p.parent != TOK_DIR}):
            if d.exists():   # model folders: drop stale shards
                shutil.rmtree(d)
        for p, d in sorted(self.files.items()):
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(d)
        return True


def round7(values):
    return [float(f"{float(x):.7g}") for x in values]


def sha256_bytes(b):
    return hashlib.sha256(b).hexdigest()


# --------------------------------------------------------------------------------------------
# Deterministic text (Rng from fixture_json)
WORDS = ("the a of to in on for with by from search vector index query document engine model "
         "token embedding cosine distance nearest neighbour graph layer memory disk file fast "
         "small large quick brown fox lazy dog river mountain city library music science "
         "history airplane wing pressure flow boundary heat velocity theory results method "
         "data paper shows that this is was were are returns ranks stores reads builds").split()


def long_text(seed, n_words):
    rng = Rng(seed)
    out = []
    for i in range(n_words):
        w = rng.pick(WORDS)
        out.append(w.capitalize() if i == 0 or out[-1].endswith(".") else w)
        if i % 11 == 10:
            out[-1] += "."
    return " ".join(out) + "."


def golden_strings():
    if not STRINGS_FILE.exists():
        sys.exit(f"{STRINGS_FILE} is missing: run tools/make-goldens.sh first")
    cases = json.loads(STRINGS_FILE.read_text(encoding="utf-8"))
    return [c["text"] for c in cases]


def training_texts(goldens):
    names = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "-r", "--name-only", TRAIN_COMMIT],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    picked = sorted(n for n in names if n == "README.md" or re.fullmatch(r"tools/[^/]+", n)
                    or (n.startswith("Sources/") and n.endswith(".swift")))
    texts = [subprocess.run(["git", "-C", str(ROOT), "show", f"{TRAIN_COMMIT}:{n}"],
                            capture_output=True, check=True).stdout.decode("utf-8") for n in picked]
    return texts + list(goldens)


# --------------------------------------------------------------------------------------------
# Part B/C inputs. The prompts are model-independent, so every tokenizer golden has them too.
PASSAGES = [
    "",
    "a",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "Sextant is a vector search engine written in Swift. It embeds documents with a built-in "
    "model and answers nearest-neighbour queries from an on-disk index.",
    "Größe, café, naïve, Ångström: 東京タワー、서울, привет мир, 😀👍🏽 🇫🇷.",
    "func add(_ a: Int, _ b: Int) -> Int {\n    return a + b\n}\n",
    "   leading spaces, double  spaces and trailing spaces   ",
    "line one\nline two\n\n\tindented line three\r\n",
    "3.14159, 2718, 1e-9, 42%, $19.99, 2024-06-01T12:00:00Z",
    "The boundary layer thickens downstream as the flow decelerates near the trailing edge of "
    "the wing. " * 4,
    long_text(7, 600),
]
TASK_WEB = "Given a web search query, retrieve relevant passages that answer the query."
TASK_CODE = "Given a question about a program, retrieve the source file that answers it."
EXAMPLES_WEB = [
    ("what is a vector database?", "A vector database stores embeddings and finds the nearest "
     "ones to a query vector."),
    ("how tall is mount everest", "Mount Everest is 8,849 metres above sea level."),
    ("boiling point of water at altitude", "At higher altitude the air pressure is lower, so "
     "water boils below 100 °C."),
]
EXAMPLES_CODE = [
    ("where are tokens split on whitespace?", "PreTokenizer.swift: splits text on whitespace "
     "and punctuation before the model runs."),
    ("which file reads safetensors headers", "SafeTensors.swift maps the file and parses the "
     "JSON header."),
    ("how is cosine similarity computed", "Pooling.swift normalizes vectors to unit length; "
     "the dot product is then the cosine."),
]
ICL_CASES = [  # (task, examples, query)
    (TASK_WEB, [], "how do airplanes fly?"),
    (TASK_WEB, EXAMPLES_WEB[:1], "what causes ocean tides"),
    (TASK_WEB, EXAMPLES_WEB, "how does a heat pump work in winter?"),
    (TASK_CODE, [], "where is the embedding normalized?"),
    (TASK_CODE, EXAMPLES_CODE[:1], "Where is the BPE merge loop?"),
    (TASK_CODE, EXAMPLES_CODE, "which code handles byte fallback (<0x41>) for 東京 and 😀?"),
]
INSTRUCT_CASES = [  # (format, task, query)
    ("qwen3", TASK_WEB, "What is the capital of France?"),
    ("qwen3", TASK_CODE, "how are shards of a model loaded"),
    ("qwen3", "Retrieve semantically similar text.", "  Ünïcödé, 東京 and emoji 🧭  "),
    ("e5-instruct", TASK_WEB, "What is the capital of France?"),
    ("e5-instruct", "Given a claim, find documents that refute the claim.",
     "The Earth is flat."),
    ("e5-instruct", "Retrieve semantically similar text.", "line one\nline two"),
]
REFINE_TEXTS = [
    "A vector search engine in Swift.",
    "What is the boundary layer?",
    "Café 東京 😀 naïve",
]
REFINE_KS = [1, 3, 5]


def icl_prompt(task, examples, query):
    block = "\n\n".join(f"<instruct>{task}\n<query>{q}\n<response>{p}" for q, p in examples)
    prefix = block + "\n\n" if examples else ""   # bge-en-icl: no examples -> empty prefix
    return prefix + f"<instruct>{task}\n<query>{query}\n<response>"


def instruct_prompt(fmt, task, query):
    if fmt == "qwen3":
        return f"Instruct: {task}\nQuery:{query}"
    return f"Instruct: {task}\nQuery: {query}"


def all_prompts():
    out = list(PASSAGES)
    out += [icl_prompt(*c) for c in ICL_CASES]
    out += [instruct_prompt(*c) for c in INSTRUCT_CASES]
    out += REFINE_TEXTS
    return out


EXTRA_TOKENIZER_STRINGS = [
    # special tokens inline (added tokens are split out before normalization)
    "hello<|endoftext|>world", "<s> x </s>", "<s>x</s>", "<s>", "</s>", "<unk>", "a<s>b",
    " <s>", "<s> ", "x </s>", "</s>x", "<|endoftext|>", "<|endoftext|><|endoftext|>",
    " <|endoftext|> ", "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>", "<|im_end|>", "<|endoftext|>\n", "text<|im_end|>", "Already terminated.</s>",
    "Already terminated.<|endoftext|>", "<s><s>", "<|endoftext", "endoftext|>", "< s>",
    # strings that look like vocabulary entries but must be tokenized as text
    "<0x41>", "<0xFF><0x00>", "▁hello", "▁", "▁▁x", "Ġhello", "ĠĠ", "Ċ",
    # spaces and newlines
    " ", "  ", "   ", "\n", "\n\n", " \n ", "\r\n", "\t", "a b", "a  b", "a   b", " a", "  a",
    "a ", "a  ", " a ", "  hello  world  ", "hello\nworld", "hello\n\nworld", "hello \nworld",
    "hello\n world", "hello   \n   world", "hello\t\tworld", "\n\nhello", "hello\n\n",
    "x\r\n\r\ny", "a \u00a0b", "end.   ", "   start", "multiple     inner     gaps",
    # byte fallback: characters absent from the training text
    "龘靐齉", "🦀🧬🪐", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "ꙮ", "Ⅻ ⅻ", "ǅ", "ﷺ", "\u0f3a\u0f3b", "a\u0301\u0302\u0303",
    # contractions (the Qwen2/GPT-2 regexes treat them specially)
    "it's", "IT'S", "we're we've I'm you'll he'd", "don't", "O'Neil's", "'s", "''",
    # numbers, digits one at a time in Qwen2
    "1234567890", "3.14", "１２３", "x2", "v1.2.3-rc4",
]


# --------------------------------------------------------------------------------------------
# A. Tokenizers
def train_bpe_bytelevel(texts, pre_tokenizer, normalizer):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    trainer = trainers.BpeTrainer(vocab_size=BYTELEVEL_VOCAB, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    model = json.loads(tok.to_str())["model"]
    return model["vocab"], [tuple(m) for m in model["merges"]]


def train_bpe_sp(texts):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    # The alphabet is chosen here (by count, then code point): the trainer's own limit_alphabet
    # breaks ties in hash order and so differs from run to run.
    counts = Counter()
    for t in texts:
        counts.update(t.replace(" ", "▁"))
    counts["▁"] += 1 << 40
    alphabet = sorted(counts, key=lambda c: (-counts[c], ord(c)))[:SP_ALPHABET]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=SP_VOCAB - 259, min_frequency=2, show_progress=False,
                                  initial_alphabet=alphabet, limit_alphabet=len(alphabet))
    tok.train_from_iterator(texts, trainer)
    model = json.loads(tok.to_str())["model"]
    return model["vocab"], [tuple(m) for m in model["merges"]]


def byte_tokens():
    return [f"<0x{b:02X}>" for b in range(256)]


def build_tokenizers(texts):
    """Returns {style: (tokenizer_json_text, tokenizer_config_dict)}."""
    from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers,
                            pre_tokenizers, processors)

    # Two runs must agree (guards against hash-order nondeterminism in the trainer).
    qwen_pre = lambda: pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    qv, qm = train_bpe_bytelevel(texts, qwen_pre(), normalizers.NFC())
    assert (qv, qm) == train_bpe_bytelevel(texts, qwen_pre(), normalizers.NFC()), "BPE training is not deterministic"
    gpt2_pre = lambda: pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    gv, gm = train_bpe_bytelevel(texts, gpt2_pre(), None)
    sv, sm = train_bpe_sp(texts)
    assert (sv, sm) == train_bpe_sp(texts), "BPE training is not deterministic"

    def special(content):
        return AddedToken(content, special=True, normalized=False, lstrip=False, rstrip=False,
                          single_word=False)

    out = {}
    # 1/2. Qwen2 style; Qwen3-Embedding style (template appends <|endoftext|>).
    for style in ("bytelevel-qwen", "bytelevel-qwen3emb"):
        tok = Tokenizer(models.BPE(vocab=dict(qv), merges=list(qm), unk_token=None, fuse_unk=False,
                                   byte_fallback=False, continuing_subword_prefix="",
                                   end_of_word_suffix=""))
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = qwen_pre()
        tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
        tok.add_special_tokens([special("<|endoftext|>"), special("<|im_start|>"), special("<|im_end|>")])
        eos = tok.token_to_id("<|endoftext|>")
        if style == "bytelevel-qwen":
            tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
        else:
            tok.post_processor = processors.TemplateProcessing(
                single="$A:0 <|endoftext|>:0", pair="$A:0 <|endoftext|>:0 $B:1 <|endoftext|>:1",
                special_tokens=[("<|endoftext|>", eos)])
        cfg = {
            "add_bos_token": False,
            "add_prefix_space": False,
            "added_tokens_decoder": None,
            "bos_token": None,
            "clean_up_tokenization_spaces": False,
            "eos_token": "<|endoftext|>",
            "errors": "replace",
            "model_max_length": MAX_LEN,
            "pad_token": "<|endoftext|>",
            "split_special_tokens": False,
            "tokenizer_class": "Qwen2Tokenizer",
            "unk_token": None,
        }
        out[style] = (tok, cfg, "pairs")

    # 3. GPT-2: <|endoftext|> is the last entry of the model vocabulary *and* an added token.
    vocab = dict(gv)
    vocab["<|endoftext|>"] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=list(gm), unk_token=None, fuse_unk=False,
                               byte_fallback=False, continuing_subword_prefix="", end_of_word_suffix=""))
    tok.normalizer = None
    tok.pre_tokenizer = gpt2_pre()
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tok.add_special_tokens([special("<|endoftext|>")])
    assert tok.token_to_id("<|endoftext|>") == len(vocab) - 1
    out["gpt2"] = (tok, {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": None,
        "bos_token": "<|endoftext|>",
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|endoftext|>",
        "errors": "replace",
        "model_max_length": 1024,
        "pad_token": None,
        "tokenizer_class": "GPT2Tokenizer",
        "unk_token": "<|endoftext|>",
    }, "strings")

    # 4/5. SentencePiece-style: <unk> <s> </s>, then <0x00>..<0xFF>, then the trained pieces.
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for t in byte_tokens():
        vocab[t] = len(vocab)
    for piece, _ in sorted(sv.items(), key=lambda kv: kv[1]):
        assert piece not in vocab, piece
        vocab[piece] = len(vocab)
    assert len(vocab) == SP_VOCAB, len(vocab)
    for style in ("sp-metaspace", "sp-legacy"):
        tok = Tokenizer(models.BPE(vocab=dict(vocab), merges=list(sm), unk_token="<unk>", fuse_unk=True,
                                   byte_fallback=True))
        if style == "sp-metaspace":
            tok.normalizer = None
            tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
        else:
            tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
            tok.pre_tokenizer = None
        tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                         decoders.Fuse(), decoders.Strip(content=" ", left=1, right=0)])
        tok.post_processor = processors.TemplateProcessing(
            single="<s>:0 $A:0", pair="<s>:0 $A:0 <s>:1 $B:1", special_tokens=[("<s>", 1)])
        tok.add_special_tokens([special("<unk>"), special("<s>"), special("</s>")])
        out[style] = (tok, {
            "add_bos_token": True,
            "add_eos_token": False,
            "added_tokens_decoder": None,
            "bos_token": "<s>",
            "clean_up_tokenization_spaces": False,
            "eos_token": "</s>",
            "legacy": style == "sp-legacy",
            "model_max_length": MAX_LEN,
            "pad_token": None,
            "sp_model_kwargs": {},
            "spaces_between_special_tokens": False,
            "tokenizer_class": "LlamaTokenizer",
            "unk_token": "<unk>",
            "use_default_system_prompt": False,
        }, "strings" if style == "sp-legacy" else "pairs")

    result = {}
    for style, (tok, cfg, merge_form) in out.items():
        data = json.loads(tok.to_str())
        merges = data["model"]["merges"]
        assert merges and all(isinstance(m, list) and len(m) == 2 for m in merges)
        if merge_form == "strings":
            assert not any(" " in a or " " in b for a, b in merges)
            data["model"]["merges"] = [f"{a} {b}" for a, b in merges]
        text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
        cfg = dict(cfg)
        cfg["added_tokens_decoder"] = {
            str(t["id"]): {k: t[k] for k in ("content", "lstrip", "normalized", "rstrip", "single_word", "special")}
            for t in data["added_tokens"]}
        result[style] = (text, cfg)
    return result


def tokenizer_goldens(style, tok_text, strings):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tok_text)
    tok.no_truncation()
    tok.no_padding()
    rows = [{"text": s, "ids": tok.encode(s, add_special_tokens=True).ids} for s in strings]
    return tok, rows


def check_tokenizer_json(style, tok_text, cfg, rows):
    """transformers, reading tokenizer.json as it is (PreTrainedTokenizerFast), must give the same
    ids. AutoTokenizer may not: transformers 5's model-specific classes (LlamaTokenizer,
    Qwen2Tokenizer, ...) keep only vocab/merges/post-processor from tokenizer.json and rebuild the
    normalizer and pre-tokenizer themselves; its disagreements are counted and reported."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    data = json.loads(tok_text)
    merges = data["model"]["merges"]
    form = "strings" if isinstance(merges[0], str) else "pairs"
    with tempfile.TemporaryDirectory() as d:
        Path(d, "tokenizer.json").write_text(tok_text, encoding="utf-8")
        Path(d, "tokenizer_config.json").write_text(pretty_json(cfg), encoding="utf-8")
        plain = PreTrainedTokenizerFast.from_pretrained(d)
        auto = AutoTokenizer.from_pretrained(d)
        bad = [r["text"] for r in rows if plain(r["text"], add_special_tokens=True)["input_ids"] != r["ids"]]
        assert not bad, f"{style}: PreTrainedTokenizerFast differs on {len(bad)} strings, e.g. {bad[0]!r}"
        differ = []
        for r in rows:
            theirs = auto(r["text"], add_special_tokens=True)["input_ids"]
            if theirs != r["ids"]:
                differ.append((r["text"], r["ids"], theirs))
    note = f"AutoTokenizer ({type(auto).__name__}) agrees"
    if differ:
        text, mine, theirs = differ[0]
        note = (f"AutoTokenizer ({type(auto).__name__}, backend {auto.backend_tokenizer.normalizer}, "
                f"{auto.backend_tokenizer.pre_tokenizer}) differs on {len(differ)} strings, e.g. "
                f"{text[:40]!r}: {theirs[:8]} instead of {mine[:8]}")
    return form, note


# --------------------------------------------------------------------------------------------
# B. Tiny models
COMMON = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=MAX_LEN, rms_norm_eps=1e-6,
              initializer_range=0.15, attention_dropout=0.0, use_cache=True)
MODELS = {
    "tiny-mistral": dict(arch="MistralForCausalLM", style="sp-metaspace", dtype="float32", seed=101,
                         rope_theta=10000.0, tie=False, extra=dict(sliding_window=4096)),
    "tiny-llama": dict(arch="LlamaForCausalLM", style="sp-legacy", dtype="bfloat16", seed=102,
                       rope_theta=500000.0, tie=True, extra=dict(rms_norm_eps=1e-5, mlp_bias=False,
                                                                 attention_bias=False)),
    "tiny-qwen2": dict(arch="Qwen2ForCausalLM", style="bytelevel-qwen", dtype="float16", seed=103,
                       rope_theta=1000000.0, tie=True, extra=dict(use_sliding_window=False)),
    "tiny-qwen3": dict(arch="Qwen3ForCausalLM", style="bytelevel-qwen3emb", dtype="float32", seed=104,
                       rope_theta=1000000.0, tie=False, extra=dict(head_dim=24, use_sliding_window=False)),
    # The bare base model of tiny-qwen3 (same weights), sharded, keys without "model.".
    "tiny-qwen3-sharded": dict(arch="Qwen3Model", style="bytelevel-qwen3emb", dtype="float32", seed=104,
                               rope_theta=1000000.0, tie=False, base_of="tiny-qwen3",
                               extra=dict(head_dim=24, use_sliding_window=False)),
}


def config_class(arch):
    import transformers
    return getattr(transformers, re.sub(r"(ForCausalLM|Model)$", "Config", arch))


def randomize(model, seed, std):
    """Every tensor drawn here, in name order, from one seeded generator: independent of how
    transformers initializes. Norm weights around 1 and biases around 0, but not equal to them,
    so that a loader that skips them is caught."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.25 * (2 * torch.rand(p.shape, generator=g) - 1))
            elif name.endswith(".bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(std * torch.randn(p.shape, generator=g))


def tokenizer_ids(tokenizers_json):
    data = json.loads(tokenizers_json)
    added = {t["content"]: t["id"] for t in data["added_tokens"]}
    size = max(list(data["model"]["vocab"].values()) + list(added.values())) + 1
    return added, size


def v4_style_config(cfg_dict, drop_head_dim):
    """Hub checkpoints written by transformers 4 carry "rope_theta"/"rope_scaling" and
    "torch_dtype"; transformers 5 writes "rope_parameters" and "dtype". Rewrite to the former
    (transformers 5 reads both)."""
    d = dict(cfg_dict)
    rp = d.pop("rope_parameters", None)
    if rp is not None:
        assert rp.get("rope_type", "default") == "default", rp
        d["rope_theta"] = rp["rope_theta"]
        d["rope_scaling"] = None
    if "dtype" in d:
        d["torch_dtype"] = d.pop("dtype")
    if drop_head_dim:   # as in bge-en-icl's config: head_dim implied by hidden_size / heads
        assert d.pop("head_dim") * d["num_attention_heads"] == d["hidden_size"]
    return dict(sorted(d.items()))


def build_model(name, spec, tok_files, built):
    """Returns {filename: bytes} for the model folder."""
    import torch
    import transformers

    tok_text, tok_cfg = tok_files[spec["style"]]
    added, vocab_size = tokenizer_ids(tok_text)
    eos = added[tok_cfg["eos_token"]]
    bos = added.get(tok_cfg["bos_token"]) if tok_cfg["bos_token"] else None
    pad = added.get(tok_cfg["pad_token"]) if tok_cfg["pad_token"] else None
    kw = dict(COMMON)
    kw.update(spec.get("extra", {}))
    cfg = config_class(spec["arch"])(
        vocab_size=vocab_size, rope_theta=spec["rope_theta"], tie_word_embeddings=spec["tie"],
        bos_token_id=bos, eos_token_id=eos, pad_token_id=pad, **kw)
    torch.manual_seed(spec["seed"])
    if "base_of" in spec:
        causal = built[spec["base_of"]]
        model = getattr(transformers, spec["arch"])(cfg)
        model.load_state_dict(causal.model.state_dict())
    else:
        model = getattr(transformers, spec["arch"])(cfg)
        randomize(model, spec["seed"], COMMON["initializer_range"])
        if spec["tie"]:
            assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
        built[name] = model
    model.config.architectures = [spec["arch"]]
    model.eval()
    files = {}
    with tempfile.TemporaryDirectory() as d:
        to_save = model.to(getattr(torch, spec["dtype"])) if spec["dtype"] != "float32" else model
        if "base_of" in spec:
            to_save.save_pretrained(d, max_shard_size="200KB")
        else:
            to_save.save_pretrained(d)
        for p in sorted(Path(d).iterdir()):
            if p.name == "generation_config.json":
                continue
            files[p.name] = p.read_bytes()
        if spec["dtype"] != "float32":
            model.float()   # keep the f32 master copy for anything built from it later
    cfgd = json.loads(files["config.json"])
    if "base_of" not in spec:   # the sharded one keeps what transformers 5 writes
        cfgd = v4_style_config(cfgd, spec["arch"].startswith("Mistral"))
    files["config.json"] = pretty_json(cfgd).encode()
    files["tokenizer.json"] = tok_text.encode()
    files["tokenizer_config.json"] = pretty_json(tok_cfg).encode()
    return files


# --------------------------------------------------------------------------------------------
# C. References
def embed_ids(base, ids):
    import torch

    with torch.no_grad():
        out = base(input_ids=torch.tensor([ids]), use_cache=False)
    v = out.last_hidden_state[0, -1].float()
    return torch.nn.functional.normalize(v, dim=0)


def bge_ids(tok, prompt):
    ids = tok(prompt, add_special_tokens=True, truncation=True, max_length=MAX_LEN - 1)["input_ids"]
    if not ids or ids[-1] != tok.eos_token_id:
        ids = ids + [tok.eos_token_id]
    return ids


def check_left_padded(base, id_lists, singles, pad_id):
    import torch

    n = max(map(len, id_lists))
    input_ids = torch.tensor([[pad_id] * (n - len(x)) + x for x in id_lists])
    mask = torch.tensor([[0] * (n - len(x)) + [1] * len(x) for x in id_lists])
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        out = base(input_ids=input_ids, attention_mask=mask, position_ids=pos, use_cache=False)
    batch = torch.nn.functional.normalize(out.last_hidden_state[:, -1].float(), dim=-1)
    err = (batch - torch.stack(singles)).abs().max().item()
    assert err < 1e-5, f"left-padded batch differs from single sequences by {err}"
    return err


def refine(causal, ids, k, use_cache=True):
    """GIRCSE: K soft tokens after the (special-token-free) input; mean of their final hidden
    states, L2-normalized."""
    import torch

    base = causal.model
    emb = base.embed_tokens.weight
    head = causal.lm_head.weight
    hidden = []
    with torch.no_grad():
        if use_cache:
            out = base(input_ids=torch.tensor([ids]), use_cache=True)
            past, last = out.past_key_values, out.last_hidden_state[0, -1]
            for step in range(k):
                probs = torch.softmax(last.float() @ head.float().T, dim=-1)
                soft = probs @ emb.float()
                pos = torch.tensor([[len(ids) + step]])
                out = base(inputs_embeds=soft[None, None, :], past_key_values=past, use_cache=True,
                           position_ids=pos)
                past, last = out.past_key_values, out.last_hidden_state[0, -1]
                hidden.append(last)
        else:  # full recomputation of the whole sequence at every step
            embeds = emb[torch.tensor(ids)]
            last = base(inputs_embeds=embeds[None], use_cache=False).last_hidden_state[0, -1]
            for step in range(k):
                probs = torch.softmax(last.float() @ head.float().T, dim=-1)
                embeds = torch.cat([embeds, (probs @ emb.float())[None]], 0)
                last = base(inputs_embeds=embeds[None], use_cache=False).last_hidden_state[0, -1]
                hidden.append(last)
    return torch.nn.functional.normalize(torch.stack(hidden).float().mean(0), dim=0)


def model_golden(name, spec, folder, summary):
    import torch
    from transformers import AutoModel, AutoModelForCausalLM, PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast.from_pretrained(folder)   # tokenizer.json as it is (see above)
    base, info = AutoModel.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager",
                                           output_loading_info=True)
    assert not info["missing_keys"] and not info["mismatched_keys"], info
    assert set(info["unexpected_keys"]) <= {"lm_head.weight"}, info   # AutoModel drops the LM head
    base.eval()
    cfg = json.loads(Path(folder, "config.json").read_text())
    rope = cfg.get("rope_theta") or cfg["rope_parameters"]["rope_theta"]
    assert base.config.rope_parameters["rope_theta"] == rope, (base.config.rope_parameters, rope)
    eos, bos = tok.eos_token_id, tok.bos_token_id
    assert eos == cfg["eos_token_id"] and bos == cfg["bos_token_id"], (eos, bos, cfg)

    def case(prompt):
        ids = bge_ids(tok, prompt)
        return ids, embed_ids(base, ids)

    g = {"model": name, "architecture": spec["arch"], "dtype": spec["dtype"], "eos_token_id": eos,
         "bos_token_id": bos, "max_length": MAX_LEN}
    rows, singles, id_lists = [], [], []
    passages = PASSAGES + ["Already terminated." + tok.eos_token]   # ids already end with EOS
    for text in passages:
        ids, v = case(text)
        rows.append({"text": text, "ids": ids, "embedding": round7(v.tolist())})
        singles.append(v)
        id_lists.append(ids)
    # The long one is cut: to 511 + the appended EOS, or to 511 when the template adds the EOS.
    template_eos = tok("x", add_special_tokens=True)["input_ids"][-1] == eos
    assert len(rows[len(PASSAGES) - 1]["ids"]) == MAX_LEN - template_eos, name
    g["passages"] = rows
    rows = []
    for task, examples, query in ICL_CASES:
        prompt = icl_prompt(task, examples, query)
        ids, v = case(prompt)
        assert len(ids) < MAX_LEN
        rows.append({"task": task, "examples": [{"query": q, "response": p} for q, p in examples],
                     "query": query, "prompt": prompt, "ids": ids, "embedding": round7(v.tolist())})
        singles.append(v)
        id_lists.append(ids)
    g["icl_queries"] = rows
    rows = []
    for fmt, task, query in INSTRUCT_CASES:
        prompt = instruct_prompt(fmt, task, query)
        ids, v = case(prompt)
        rows.append({"format": fmt, "task": task, "query": query, "prompt": prompt, "ids": ids,
                     "embedding": round7(v.tolist())})
        singles.append(v)
        id_lists.append(ids)
    g["instruct_queries"] = rows

    # Left-padded batches (positions from the mask) give the same vectors.
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos
    err = max(check_left_padded(base, id_lists[i:i + 7], singles[i:i + 7], pad)
              for i in range(0, len(id_lists), 7))
    embs = torch.stack(singles)
    cos = embs @ embs.T
    off = cos[~torch.eye(len(singles), dtype=torch.bool)]
    summary.append(f"{name}: {len(singles)} cases, left-pad max err {err:.1e}, "
                   f"pairwise cos min {off.min():.3f} mean {off.mean():.3f} max {off.max():.3f}")
    assert off.max() < 0.999, "embeddings are near-degenerate"

    if spec["arch"].endswith("ForCausalLM"):
        causal = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
        causal.eval()
        with torch.no_grad():   # the base model inside the LM is the one used above
            ref = torch.tensor(id_lists[2])
            assert torch.equal(causal.model(input_ids=ref[None]).last_hidden_state,
                               base(input_ids=ref[None]).last_hidden_state)
        if cfg["tie_word_embeddings"]:
            assert causal.lm_head.weight.data_ptr() == causal.model.embed_tokens.weight.data_ptr()
        rows, worst = [], 0.0
        for text in REFINE_TEXTS:
            ids = tok(text, add_special_tokens=False)["input_ids"]
            assert ids and ids[0] != bos and ids[-1] != eos
            for k in REFINE_KS:
                v = refine(causal, ids, k)
                worst = max(worst, (v - refine(causal, ids, k, use_cache=False)).abs().max().item())
                rows.append({"text": text, "k": k, "ids": ids, "embedding": round7(v.tolist())})
        assert worst < 1e-5, f"KV-cache refinement differs from full recomputation by {worst}"
        g["refine"] = rows
        summary.append(f"{name}: {len(rows)} refine cases, cache vs full max err {worst:.1e}")
    return g


# --------------------------------------------------------------------------------------------
def main():
    import torch
    import tokenizers
    import transformers

    check = "--check" in sys.argv[1:]
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    out = Writer(check)
    summary = [f"torch {torch.__version__}, transformers {transformers.__version__}, "
               f"tokenizers {tokenizers.__version__}"]

    goldens = golden_strings()
    texts = training_texts(goldens)
    summary.append(f"training text: {len(texts)} texts, {sum(map(len, texts))} chars "
                   f"(repo @ {TRAIN_COMMIT[:7]} + {len(goldens)} golden strings)")
    tok_files = build_tokenizers(texts)

    strings, seen = [], set()
    for s in goldens + EXTRA_TOKENIZER_STRINGS + all_prompts() + \
            ["Already terminated.</s>", "Already terminated.<|endoftext|>"]:
        if s not in seen:
            seen.add(s)
            strings.append(s)
    from tokenizers import Tokenizer
    for style in STYLES:
        tok_text, cfg = tok_files[style]
        tok, rows = tokenizer_goldens(style, tok_text, strings)
        form, note = check_tokenizer_json(style, tok_text, cfg, rows)
        out.add(TOK_DIR / style / "tokenizer.json", tok_text)
        out.add(TOK_DIR / style / "tokenizer_config.json", pretty_json(cfg))
        out.add(FIX / "tokenizer" / f"{style}.golden.json", render_json(rows))
        n_fallback = 0
        if style.startswith("sp-"):
            first_byte = tok.token_to_id("<0x00>")
            fb = [r for r in rows if any(first_byte <= i < first_byte + 256 for i in r["ids"])]
            n_fallback = len(fb)
            by_text = {r["text"]: r["ids"] for r in rows}
            # "龘" is E9 BE 98 in UTF-8: three byte tokens after <s> and "▁"
            assert [tok.id_to_token(i) for i in by_text["龘靐齉"][:5]] == ["<s>", "▁", "<0xE9>", "<0xBE>", "<0x98>"]
            assert not [t for t, ids in by_text.items() if tok.token_to_id("<unk>") in ids and "<unk>" not in t]
        summary.append(f"{style}: vocab {tok.get_vocab_size()} (model {len(json.loads(tok_text)['model']['vocab'])}), "
                       f"merges as {form}, {len(rows)} golden strings; {note}"
                       + (f", byte fallback in {n_fallback} strings" if style.startswith("sp-") else ""))

    built = {}
    with tempfile.TemporaryDirectory() as work:
        for name, spec in MODELS.items():
            files = build_model(name, spec, tok_files, built)
            folder = Path(work, name)
            folder.mkdir()
            for fn, data in files.items():
                (folder / fn).write_bytes(data)
                out.add(DEC / name / fn, data)
            g = model_golden(name, spec, folder, summary)
            g["weights_sha256"] = {fn: sha256_bytes(d) for fn, d in sorted(files.items())
                                   if fn.endswith(".safetensors")}
            out.add(DEC / f"{name}.golden.json", render_json(g))
            size = sum(len(d) for d in files.values())
            summary.append(f"{name}: {len(files)} files, {size / 1024:.0f} KiB")

    for line in summary:
        print(line)
    ok = out.finish()
    if not check:
        print(f"wrote {len(out.files)} files")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
