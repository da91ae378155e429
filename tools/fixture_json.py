"""Shared by the golden generators: a seeded generator and JSON rendering (one record per line,
every invisible character escaped), so that fixture diffs stay readable and reruns stay
byte-identical."""
import json
import unicodedata


def escape_invisible(s):
    """json.dumps(ensure_ascii=False) leaves \\x7f, \\u0085, zero-width chars, BOMs, etc. raw;
    escape every control/format/separator/unassigned character so the files stay readable."""
    out = []
    for ch in s:
        cat = unicodedata.category(ch)
        if (cat[0] == "C" or cat in ("Zl", "Zp") or (cat == "Zs" and ch != " ")) and ch not in "\n\t":
            cp = ord(ch)
            if cp > 0xFFFF:  # JSON escapes are UTF-16: emit a surrogate pair
                cp -= 0x10000
                out.append("\\u%04x\\u%04x" % (0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF)))
            else:
                out.append("\\u%04x" % cp)
        else:
            out.append(ch)
    return "".join(out)


def jdump(obj):
    return escape_invisible(json.dumps(obj, ensure_ascii=False))


def render_json(obj):
    """Fixture layout: a top-level dict has one key per line, a list of dicts (top-level or as a
    dict value) one item per line; checked to round-trip. Ends with a newline."""
    def render_list(items, indent):
        if not items:
            return "[]"
        return "[\n" + ",\n".join(indent + "  " + jdump(x) for x in items) + "\n" + indent + "]"

    if isinstance(obj, list):
        text = render_list(obj, "")
    else:
        lines = []
        for k, v in obj.items():
            val = render_list(v, "  ") if isinstance(v, list) and v and isinstance(v[0], dict) else jdump(v)
            lines.append("  " + jdump(k) + ": " + val)
        text = "{\n" + ",\n".join(lines) + "\n}"
    assert json.loads(text) == obj
    return text + "\n"


def pretty_json(obj):
    """Config files as transformers writes them (indent 2)."""
    return json.dumps(obj, ensure_ascii=False, indent=2) + "\n"


# Deterministic generator: splitmix64, so the fixtures never depend on Python's `random`.
class Rng:
    def __init__(self, seed):
        self.state = seed & 0xFFFFFFFFFFFFFFFF

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        return z ^ (z >> 31)

    def below(self, n):
        return self.next() % n

    def pick(self, seq):
        return seq[self.below(len(seq))]
