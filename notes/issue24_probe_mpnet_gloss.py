import sys, numpy as np
sys.path.insert(0, "/tmp/x")
from wn import expand
from posetalk.models.data import describe as desc
from posetalk.models.data import head_motion as hm
from sentence_transformers import SentenceTransformer
from sklearn.linear_model import LogisticRegression
mp = SentenceTransformer("/tmp/x/mp/mpnet/all-mpnet-base-v2", device="cpu")
def mpnet(ts): return mp.encode(list(ts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
rng = np.random.default_rng(0)
def texts(heldout, n):
    X, y = [], []
    for s in hm.STYLES:
        for _ in range(n):
            seg = hm.make_segment(s, 0, 100, rng)
            X.append(desc.describe(hm.Plan((seg,)), rng, heldout=heldout)); y.append(s)
    return X, y
tx, ty = texts(False, 150)
hx, hy = texts(True, 60)
for name, f in (("mpnet+gloss", expand),):
    clf = LogisticRegression(max_iter=3000, C=10).fit(mpnet([f(t) for t in tx]), ty)
    pred = clf.predict(mpnet([f(t) for t in hx]))
    acc = (pred == np.array(hy))
    print(name, "heldout acc", round(acc.mean(), 3), {s: round(float(acc[np.array(hy) == s].mean()), 2) for s in hm.STYLES})
    bad = [(t, p) for t, p, y in zip(hx, pred, hy) if y == "nodding" and p != y][:6]
    print(bad)
