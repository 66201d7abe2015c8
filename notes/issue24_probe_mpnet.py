import sys, time, numpy as np
from posetalk.models.data import describe as desc
from posetalk.models.data import head_motion as hm
from posetalk.models.pld.text import embed as minilm
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
users = ["moves the head up and down as if saying yes", "keeps dipping the chin in agreement", "bobs the head along while talking", "wags the head", "moves the head side to side as if saying no"]
for name, f in (("minilm", minilm), ("mpnet", mpnet)):
    t0 = time.time()
    clf = LogisticRegression(max_iter=3000, C=10).fit(f(tx), ty)
    pred = clf.predict(f(hx))
    acc = (pred == np.array(hy))
    print(name, f"{time.time()-t0:.0f}s", "heldout acc", round(acc.mean(), 3), {s: round(float(acc[np.array(hy) == s].mean()), 2) for s in hm.STYLES})
    print("   ", list(clf.predict(f(users))))
t0 = time.time(); mpnet(["nods slowly"]); print("mpnet one prompt ms", (time.time()-t0)*1000)
