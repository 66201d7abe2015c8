import re
ROOT = "/usr/share/wordnet"
_index, _exc = {}, {}
for line in open(f"{ROOT}/index.verb", encoding="latin-1"):
    if line.startswith(" "): continue
    f = line.split()
    lemma, n_syn, n_ptr = f[0], int(f[2]), int(f[3])
    offsets = f[4 + n_ptr + 2:]
    _index[lemma] = offsets
for line in open(f"{ROOT}/verb.exc", encoding="latin-1"):
    a, b = line.split()[:2]; _exc[a] = b
_data = open(f"{ROOT}/data.verb", "rb")
def gloss(offset):
    _data.seek(int(offset)); line = _data.readline().decode("latin-1")
    return line.split("|", 1)[1].split(";")[0].strip()
def lemma(word):
    w = word.lower()
    if w in _exc: return _exc[w]
    for suf, rep in (("ies", "y"), ("es", "e"), ("es", ""), ("s", ""), ("ied", "y"), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")):
        if w.endswith(suf):
            c = w[: len(w) - len(suf)] + rep
            if c in _index: return c
            if suf in ("ed", "ing") and len(c) > 2 and c[-1] == c[-2] and c[:-1] in _index: return c[:-1]
    return w if w in _index else None
STOP = {"head", "heads", "face", "eyes", "is", "be", "was", "keeps", "keep", "kept", "keeping", "seen", "can", "see", "spends", "talks", "speaks", "while", "does", "let", "lets"}
def expand(text):
    gl = []
    for w in re.findall(r"[a-zA-Z]+", text):
        if w.lower() in STOP: continue
        l = lemma(w)
        if l and _index.get(l):
            gl.append(gloss(_index[l][0]))
    return text + (" (" + "; ".join(gl) + ")" if gl else "")
if __name__ == "__main__":
    for t in ["She bobs her head", "He wags his head in refusal", "swivels head to and fro", "angles her head leftward", "dips his head repeatedly", "She nods slowly", "glances about", "drops her gaze"]:
        print(expand(t))
