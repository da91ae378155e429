"""JSON rendering shared by the golden generators: one record per line, and every invisible
character escaped, so that fixture diffs stay readable and reruns stay byte-identical."""
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
