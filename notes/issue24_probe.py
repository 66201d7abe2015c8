import sys, numpy as np
from posetalk.models.data import describe as desc
from posetalk.models.data import head_motion as hm
from posetalk.models.pld.text import embed
from sklearn.linear_model import LogisticRegression
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
clf = LogisticRegression(max_iter=3000, C=10).fit(embed(tx), ty)
pred = clf.predict(embed(hx))
acc = (pred == np.array(hy))
print("train acc", (clf.predict(embed(tx)) == np.array(ty)).mean(), "heldout acc", acc.mean())
for s in hm.STYLES:
    m = np.array(hy) == s
    print(f"  {s:15s} {acc[m].mean():.2f}")
users = {"nodding": ["moves the head up and down as if saying yes", "keeps dipping the chin in agreement", "bobs the head along while talking", "nod slowly", "Nodding yes."],
         "shaking": ["shakes no", "moves the head side to side as if saying no", "wags the head"],
         "tilting": ["cocks the head to one side", "tilt your head"],
         "still": ["doesn't move the head", "no head movement at all"],
         "looking_down": ["looks at the floor", "eyes down"]}
for s, ps in users.items():
    print(s, list(zip(ps, clf.predict(embed(ps)))))
