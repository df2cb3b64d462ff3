"""Seeds 1, 2 (/tmp/arena/confirm12) + each method's seed-0 fit at its tuned λ from the λ grid."""
import pandas as pd
from rcekd_core.report import comparable, summarize, significance
G = "/tmp/arena/grid"
seed0 = {"scratch": "x1-a", "rrd": "x1-a", "kd": "kd-x0.01", "rcekd": "rcekd-x0.0001", "unkd": "unkd-x0.01",
         "dcd": "dcd-x0.000001", "cd": "cd-x0.000001", "hetcomp": "hetcomp-x0.000001", "de": "de-x0.000001"}
c = pd.read_csv("/tmp/arena/confirm12/results.csv")
parts = [c]
for m, d in seed0.items():
    r = pd.read_csv(f"{G}/{d}/results.csv")
    parts.append(r[(r["model"] == "student") & (r["method"] == m)])
df = comparable(pd.concat(parts, ignore_index=True))
s = summarize(df, "test", ["NDCG@10", "Recall@10"]).set_index("method")
sig = significance(df)
print(s[["seeds", "NDCG@10 mean", "NDCG@10 std", "Recall@10 mean", "Recall@10 std"]].round(4).to_string())
print(sig[sig.metric.isin(["NDCG@10", "Recall@10"])][["versus", "metric", "paired_seeds", "p_value"]].round(3).to_string())
