#!/usr/bin/env python3
"""Writes the tokenizer and embedding goldens Sextant's Swift tests compare against.

  fixtures/tokenizer/golden-strings.json          [{"category", "text"}], the test inputs
  fixtures/tokenizer/all-MiniLM-L6-v2.golden.json [{"text", "ids"}], HF `tokenizers` ids
  fixtures/embeddings/all-MiniLM-L6-v2.golden.json sentence-transformers embeddings

Run through tools/make-goldens.sh (it picks the venv's python). Offline only: the model is
read from models/all-MiniLM-L6-v2. Output is deterministic: rerunning rewrites identical bytes.
"""
import hashlib
import json
import os
import sys
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixture_json import Rng, render_json  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_DIR = ROOT / "models" / MODEL_NAME
MAX_LEN = 256  # sentence_bert_config.json max_seq_length, counting [CLS] and [SEP]
STRINGS_FILE = ROOT / "fixtures/tokenizer/golden-strings.json"
TOKENS_FILE = ROOT / f"fixtures/tokenizer/{MODEL_NAME}.golden.json"
EMBED_FILE = ROOT / f"fixtures/embeddings/{MODEL_NAME}.golden.json"


# --------------------------------------------------------------------------------------------
WORDS = (
    "the a an of to in on for with by from about over under between after before search "
    "vector index query document engine model token embedding cosine distance nearest "
    "neighbour graph layer memory disk file fast slow small large quick brown fox lazy dog "
    "jumps runs reads writes builds ranks returns finds stores loads river mountain city "
    "library music science history airplane wing pressure flow boundary heat velocity "
    "experimental theory results method data paper shows that this is was were are"
).split()
SUBJECTS = ["The engine", "A small model", "Our index", "The search query", "Every document",
            "The librarian", "A quick brown fox", "The compiler", "This benchmark", "My cat"]
VERBS = ["returns", "ranks", "embeds", "stores", "ignores", "reads", "compresses", "finds",
         "rewrites", "measures"]
OBJECTS = ["the nearest neighbours", "twelve documents", "a vector of floats", "every token",
           "the lazy dog", "unexpected results", "the boundary layer", "its own memory",
           "a sorted list", "the heat transfer data"]
ENDINGS = [".", "!", "?", "...", " quickly.", " in 3 ms.", " (mostly).", ", again.", "; done.", ""]

# Characters that stress normalization and pre-tokenization, used by the "fuzz" category.
FUZZ_ALPHABET = list(
    "abcXYZ09 .,;!?-_'\"()[]{}<>/\\@#$%^&*+=|~`"
    "éÉñçøßÅåæœ" "e\u0301a\u0308o\u0303\u0327\u0300\u0323"
    "中文字漢語日本東京ひらがなカタカナ한국어서울" "\u3099\u309a"
    "αβγΣσςабвЖжعربيةעבריתहिन्दीไทย"
    "😀👍🏽❤\ufe0f\u200d🇫🇷🇯🇵👩\u200d💻"
    "\u0000\u0007\t\r\n\u001b\u007f\u0085\u200b\u200c\u200d\ufeff\u00ad\u2028\u2029"
    "\u00a0\u2003\u3000\u202f\u1680"
    "ＡＢＣ１２３！？" "€£¥±×÷∑∞≤≥√"
)


def long_text(rng, n_words):
    return " ".join(rng.pick(WORDS) for _ in range(n_words))


def nfd(s):
    return unicodedata.normalize("NFD", s)


def golden_strings():
    """Returns [(category, text)]. Hand-written edge cases first, then seeded generated ones."""
    rng = Rng(20240601)
    out = []

    def add(category, *texts):
        out.extend((category, t) for t in texts)

    add("empty", "", " ", "\n", "\t \r\n ")
    add("english",
        "Hello, world!",
        "The quick brown fox jumps over the lazy dog.",
        "Sextant is a vector search engine with a built-in embedder.",
        "What is the boundary layer thickness on a flat plate at zero incidence?",
        "I can't believe it's not butter; it's margarine.",
        "She said, \"Don't go there,\" and left.",
        "E-mail me at 5 o'clock -- or don't.",
        "a", "I", "ok", "unbelievably", "Antidisestablishmentarianism is long.",
        "tokenization", "embeddings", "unaffable", "running jumped swimming",
        "The U.S.A. and the U.K. signed the treaty in 1945.",
        "Dr. Smith's lab (room 4B) opens at 9:30 a.m.",
        "Mr. and Mrs. O'Neill went to the well-known state-of-the-art cafe.",
        "This sentence has trailing spaces   ",
        "   This one has leading spaces.",
        "One.Two.Three",
        "hello\nworld",
        "how do airplanes fly?")
    for _ in range(24):
        add("english-generated", f"{rng.pick(SUBJECTS)} {rng.pick(VERBS)} {rng.pick(OBJECTS)}{rng.pick(ENDINGS)}")

    accented = ["café", "naïve", "résumé", "Zürich", "São Paulo", "Ångström", "façade",
                "jalapeño", "Crème brûlée", "Ælfred", "Øresund", "Dvořák", "Łódź", "Mötley Crüe",
                "coöperate", "Việt Nam", "Ḥasan", "ﬁancé"]
    add("accents-precomposed", *accented)
    add("accents-decomposed", *[nfd(a) for a in accented])
    add("accents-mixed",
        "cafe\u0301 and café", "e\u0301\u0301\u0301", "\u0301 leading combining mark",
        "a\u0300\u0301\u0302\u0303\u0304\u0305\u0306", "Z\u0351\u0352\u0357\u0358\u035bA\u0350L\u0346G\u034eO",
        "\u0301", "n\u0303o", "x\u20dd", "q\u0323\u0307")
    add("case-mapping",
        "ΟΔΥΣΣΕΥΣ", "ΣΊΣΥΦΟΣ σοφός", "İstanbul", "ısparta", "STRASSE straße ẞ",
        "\u212a Kelvin", "\u212b angstrom sign", "ǅemal ǄEMAL ǆemal", "ĲSSELMEER", "ÀÉÎÕÜ",
        "HeLLo WoRLD", "iPhone eBay McDonald", "CamelCaseIdentifier", "SCREAMING_SNAKE_CASE",
        "kebab-case-words", "ALL CAPS SENTENCE HERE.")
    add("cjk-chinese", "中文", "我爱北京天安门。", "向量搜索引擎", "這是一個繁體中文句子，對吧？",
        "汉字和English混合text", "𠀀𠀁𪚥 extension B", "\uf900\uf901 compatibility ideographs",
        "一二三四五六七八九十百千万")
    add("cjk-japanese", "こんにちは", "ひらがなとカタカナ", "東京は日本の首都です。",
        "ガギグゲゴ パピプペポ", "か\u3099き\u3099", "ｶﾀｶﾅ half-width", "ー〜・「」『』",
        "すし🍣を食べたい")
    add("cjk-korean", "안녕하세요", "한국어 문장입니다.", "서울특별시", "ᄒᆞᆫ글 jamo",
        "한글과 English 섞기", "ㄱㄴㄷ compatibility jamo")
    add("emoji",
        "😀", "I love pizza 🍕!", "👍🏽 thumbs up medium skin", "👍🏻👍🏼👍🏽👍🏾👍🏿",
        "👨\u200d👩\u200d👧\u200d👦 family", "👩\u200d💻 technologist", "🏳️\u200d🌈 flag",
        "🇫🇷🇩🇪🇯🇵🇺🇸", "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f England",
        "1️⃣ #️⃣ keycaps", "❤️ vs ❤", "😀😀😀😀😀", "emoji😀inside😀words",
        "🧑🏽\u200d🤝\u200d🧑🏿", "☺ ☹ ✈ ☎", "🫠🫡 new emoji")
    add("control",
        "null\u0000byte", "bell\u0007char", "tab\tseparated\tvalues", "carriage\rreturn",
        "windows\r\nline", "escape\u001b[31mred\u001b[0m", "delete\u007fchar", "next\u0085line",
        "zero\u200bwidth\u200bspace", "zero\u200dwidth\u200djoiner", "byte\ufefforder mark",
        "\ufeffleading BOM", "soft\u00adhyphen", "non\u200cjoiner", "line\u2028separator",
        "para\u2029separator", "\u0000\u0000\u0000", "\u0001\u0002\u0003\u0004\u0005\u0006",
        "replacement\ufffdchar", "rtl\u202emark\u202c", "word\u2060joiner", "\u180emongolian",
        "private\ue000use", "\u001c\u001d\u001e\u001f info separators")
    add("url-email",
        "https://example.com/path?query=1&x=y#frag", "http://www.sextant.dev/docs/index.html",
        "Contact: jane.doe+tag@example.co.uk", "ftp://files.example.org/pub/file-1.2.3.tar.gz",
        "mailto:someone@example.com", "Visit https://en.wikipedia.org/wiki/Vector_database now",
        "user@localhost", "https://例え.jp/パス", "192.168.0.1:8080", "[::1]:443",
        "s3://bucket/key/with%20escapes", "git@github.com:owner/repo.git")
    add("code",
        "func embed(_ text: String) -> [Float] { return model(text) }",
        "let xs = [1, 2, 3].map { $0 * 2 }.filter { $0 > 2 }",
        "guard let url = URL(string: s) else { throw Err.bad }",
        "def tokenize(text: str) -> list[int]:\n    return [vocab[t] for t in text.split()]",
        "if __name__ == \"__main__\":\n    main()",
        "lambda x, *args, **kw: x ** 2 // 3 % 7",
        "{\"model\": \"all-MiniLM-L6-v2\", \"dims\": 384, \"ok\": true, \"tags\": []}",
        "[{\"a\":1},{\"b\":[2,3,{\"c\":null}]}]",
        "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", a[i++] << 2); return 0; }",
        "for (int i = 0; i < n; ++i) { x += y[i] * z[i]; }",
        "p->next = q && r || !s; a ^= b; c |= d & ~e;",
        "SELECT * FROM docs WHERE id >= 10 AND title LIKE '%wing%';",
        "x != y && y <= z || z >= w => !==",
        "std::vector<std::string> v{\"a\", \"b\"};",
        "<div class=\"x\">Hello &amp; bye</div>",
        "$ ./sextant embed --stats < in.jsonl > out.jsonl 2>&1")
    add("long-word",
        "a" * 99, "a" * 100, "a" * 101, "b" * 150, "z" * 300,
        "x" * 100 + " short", "short " + "y" * 101,
        "supercalifragilisticexpialidocious" * 3,            # 102 chars
        "ab" * 50 + ".", "ab" * 50 + "c.",                   # punctuation ends the word
        "é" * 100, "é" * 101, nfd("é" * 100),                # counted after accent stripping
        "漢" * 120,                                          # CJK chars are split one by one
        "1" * 101, "😀" * 101, "a" * 50 + "😀",
        "Ａ" * 101, "pneumonoultramicroscopicsilicovolcanoconiosis")
    add("whitespace",
        "no\u00a0break\u00a0space", "em\u2003space", "ideographic\u3000space", "para\n\nbreak",
        "many          spaces", "   leading", "trailing   ", "\t\ttabs\t\t", "\n\n\n",
        "narrow\u202fnbsp", "ogham\u1680space", "thin\u2009hair\u200afigure\u2007",
        "mixed \u00a0\u2003\u3000\t\n whitespace", "\u3000\u3000", " " * 50,
        "\u00a0", "a\u000bvertical tab\u000cform feed")
    add("fullwidth", "ＡＢＣ１２３", "ｈｅｌｌｏ　ｗｏｒｌｄ", "！＃＄％＆（）", "Ｓｅｘｔａｎｔ　ｉｓ　ｆａｓｔ。",
        "１２，３４５．６７", "ﾊﾝｶｸ ｶﾀｶﾅ")
    add("scripts",
        "Καλημέρα κόσμε", "Η γρήγορη καφέ αλεπού", "Привет, мир!", "Съешь же ещё этих мягких булок",
        "Ёлка и ёж", "مرحبا بالعالم", "اللُّغَةُ العَرَبِيَّة", "שלום עולם", "עִבְרִית מְנֻקֶּדֶת",
        "नमस्ते दुनिया", "हिन्दी भाषा", "สวัสดีชาวโลก", "ภาษาไทย", "Բարեւ աշխարհ",
        "გამარჯობა", "வணக்கம்", "ሰላም ለዓለም", "Xin chào thế giới", "Γειά σου Κόσμε 123",
        "Ukrainian ґ є ї і", "ܫܠܡܐ", "ᚠᚢᚦᚨᚱᚲ runes", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math fraktur", "ⓐⓑⓒ circled")
    add("punctuation",
        "!!!", "???!!!...", "...", "—–-", "«quotes» „German“ “curly” ‘single’",
        "a,b;c:d", "(((nested)))", "[brackets]{braces}<angles>", "@#$%^&*", "~`|\\/",
        "¿Qué? ¡Sí!", "。、！？", "‽⸮", "--flag=value", "'''\"\"\"", "§¶†‡•", "ellipsis… and …",
        "_underscore_ and __dunder__")
    add("numbers",
        "1,000,000", "3.14159", "1.234.567,89", "1 000 000", "1'000'000", "-42", "+7",
        "1e-10", "0x1F", "2024-06-01T12:34:56Z", "50%", "$1,299.99", "€5", "5€", "10°C",
        "1/2 + 3/4", "½ ¾ ²³", "٠١٢٣٤٥٦٧٨٩", "१२३", "12345678901234567890")
    add("special-tokens",
        "[CLS] hello [SEP]", "[MASK]", "[UNK]", "[pad]", "[PAD]", "[SEP]", "[CLS]",
        "[CLS][SEP][MASK][UNK][PAD]", "x[MASK]y", "[ MASK ]", "[Cls] lower", "[[CLS]]",
        "The [MASK] sat on the mat.", "##ing", "##", "[unused0]", "</s> <s> <pad>")
    add("math",
        "∑ᵢ xᵢ² ≤ ∞", "∀x ∈ ℝ, ∃y: x < y", "√2 ≈ 1.414", "α + β = γ", "∫₀¹ f(x) dx",
        "a × b ÷ c ± d", "≠ ≡ ≅ ∝", "E = mc²", "∂f/∂x", "ℵ₀ < 2^ℵ₀", "𝑓(𝑥) = 𝑥²", "⊕⊗⊥∥")
    add("mixed",
        "Café ☕ at 東京 with 👩\u200d💻 — costs ¥500",
        "Россия, 中国, USA: 3 countries 🌍",
        "emoji👍🏽and\u200bzero-width and café",
        "HTML&nbsp;entity &lt;tag&gt;")

    # Seeded fuzz strings from an alphabet of awkward characters.
    for i in range(40):
        n = 1 + rng.below(40)
        add("fuzz", "".join(rng.pick(FUZZ_ALPHABET) for _ in range(n)))

    # Texts near and over the 256-token limit. "hello" is one token, so n words = n+2 ids.
    add("long",
        " ".join(["hello"] * 253), " ".join(["hello"] * 254), " ".join(["hello"] * 255),
        " ".join(["hello"] * 254) + " unaffable",  # truncation cuts a multi-piece word
        long_text(rng, 300), long_text(rng, 1000), long_text(rng, 3000),
        "漢字" * 400, ("Sextant ranks documents. " * 200).strip(),
        "é" * 5000, "😀 " * 600)
    return out


QUERIES = [  # (instruct, text); embedded input is exactly instruct + " " + text
    ("Represent this sentence for searching relevant passages:", "how do airplane wings generate lift?"),
    ("Represent this sentence for searching relevant passages:", "boundary layer heat transfer"),
    ("query:", "what is a vector database"),
    ("query:", "café in Zürich"),
    ("passage:", "The boundary layer on a flat plate thickens downstream."),
    ("Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:",
     "nearest neighbour search"),
    ("Given a question, retrieve passages that answer it.", "Who wrote Dvořák's New World symphony?"),
    ("Retrieve semantically similar text.", "The quick brown fox jumps over the lazy dog."),
    ("Find code that does this:", "sort a list of floats descending"),
    ("检索相关文档:", "向量搜索引擎"),
    ("[MASK] Represent:", "special tokens in an instruction"),
    ("Summarize:", " ".join(["hello"] * 300)),
]


# --------------------------------------------------------------------------------------------
# Output: JSON with one record per line, so diffs stay readable and files stay stable.
def write_json(path, obj):
    """One record per line (fixture_json.render_json), checked to round-trip."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_json(obj), encoding="utf-8")
    assert json.loads(path.read_text(encoding="utf-8")) == obj, f"{path} does not round-trip"


def round7(values):
    return [float(f"{float(x):.7g}") for x in values]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
def main():
    import torch
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

    torch.manual_seed(0)
    torch.set_num_threads(1)  # one thread: the reduction order (and so the low bits) is fixed

    cases = golden_strings()
    texts = [t for _, t in cases]
    assert len(cases) >= 320, len(cases)
    for t in texts:  # every string must be representable as a Swift String (no lone surrogates)
        t.encode("utf-8")
    write_json(STRINGS_FILE, [{"category": c, "text": t} for c, t in cases])

    # Raw HF tokenizers. tokenizer.json ships truncation=128 and padding Fixed(128): override both.
    tok = Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
    tok.enable_truncation(max_length=MAX_LEN)
    tok.no_padding()
    ids = [tok.encode(t, add_special_tokens=True).ids for t in texts]

    # Cross-check against sentence-transformers' own preprocessing, one text at a time so no
    # padding is involved. (`tokenize` is the pre-v6 name of `preprocess`.)
    model = SentenceTransformer(str(MODEL_DIR), device="cpu")
    assert model.max_seq_length == MAX_LEN, model.max_seq_length
    preprocess = getattr(model, "preprocess", None) or model.tokenize
    mismatches = []
    for t, mine in zip(texts, ids):
        st_ids = preprocess([t])["input_ids"][0].tolist()
        if st_ids != mine:
            mismatches.append((t, mine, st_ids))
    for t, mine, st_ids in mismatches[:10]:
        print(f"MISMATCH {t[:60]!r}\n  tokenizers: {mine[:20]}\n  ST:         {st_ids[:20]}", file=sys.stderr)
    assert not mismatches, f"{len(mismatches)} strings tokenize differently in ST and tokenizers"

    # Self-checks on the boundary cases built into the strings.
    by_text = dict(zip(texts, ids))
    assert by_text[""] == [101, 102]
    assert len(by_text[" ".join(["hello"] * 254)]) == MAX_LEN
    assert len(by_text[" ".join(["hello"] * 255)]) == MAX_LEN
    assert len(by_text[" ".join(["hello"] * 253)]) == MAX_LEN - 1
    assert by_text["a" * 100] != [101, 100, 102] and by_text["a" * 101] == [101, 100, 102]
    assert max(map(len, ids)) == MAX_LEN and all(i[0] == 101 and i[-1] == 102 for i in ids)
    write_json(TOKENS_FILE, [{"text": t, "ids": i} for t, i in zip(texts, ids)])

    # Embeddings. The model's own Normalize module already L2-normalizes.
    emb = model.encode(texts, batch_size=32, normalize_embeddings=False, convert_to_numpy=True)
    inputs = [f"{instruct} {text}" for instruct, text in QUERIES]
    qemb = model.encode(inputs, batch_size=32, normalize_embeddings=False, convert_to_numpy=True)
    dims = int(emb.shape[1])
    assert dims == 384
    norms = (emb ** 2).sum(axis=1) ** 0.5
    assert abs(norms - 1).max() < 1e-4, "embeddings should come out unit-length"
    write_json(EMBED_FILE, {
        "model": MODEL_NAME,
        "sha256": sha256(MODEL_DIR / "model.safetensors"),
        "dims": dims,
        "cases": [{"text": t, "embedding": round7(e)} for t, e in zip(texts, emb)],
        "queries": [{"text": text, "instruct": instruct, "input": inp, "embedding": round7(e)}
                    for (instruct, text), inp, e in zip(QUERIES, inputs, qemb)],
    })

    categories = sorted({c for c, _ in cases})
    truncated = sum(1 for t in texts if len(tok.encode(t).ids) == MAX_LEN)
    print(f"strings:    {len(cases)} in {len(categories)} categories ({', '.join(categories)})")
    print(f"tokens:     {sum(map(len, ids))} ids total, longest {max(map(len, ids))}, "
          f"{truncated} strings at the {MAX_LEN}-token limit, "
          f"{sum(i.count(100) for i in ids)} [UNK]; ST tokenization matches on all {len(texts)}")
    print(f"embeddings: {len(texts)} cases + {len(QUERIES)} instructed queries, dims {dims}")
    for p in (STRINGS_FILE, TOKENS_FILE, EMBED_FILE):
        print(f"wrote {p.relative_to(ROOT)}  ({p.stat().st_size / 1024:.1f} KiB)")


if __name__ == "__main__":
    main()
