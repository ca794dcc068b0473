"""Reads benches/backbones/run.sh's output folder: the probe's scores per target and the fine-tuned
accuracy per target, backbone and seed; prints them and the weighted Kendall tau (scipy's
`weightedtau`, hyperbolic weights: agreement at the top of the ranking counts most, as in the
LogME and SFDA papers) of each metric against the mean fine-tuned accuracy.
Usage: python3 rank.py OUT SEED..."""
import json
import statistics
import sys

from scipy.stats import weightedtau

out, seeds = sys.argv[1], sys.argv[2:]
for target in ["digits", "shapes"]:
    scores = {row["entry"]: row for row in json.load(open(f"{out}/probe-{target}.json"))}
    accuracy = {}
    for entry in scores:
        values = [json.load(open(f"{out}/runs/{target}-{entry}-{seed}/summary.json"))["final_valid_accuracy"] * 100 for seed in seeds]
        accuracy[entry] = values
    print(f"\ntarget {target}: fine-tuned accuracy over seeds {' '.join(seeds)}, and the probe's scores")
    print(f"{'backbone':<22} {'fine-tuned':>14} {'LogME':>8} {'H-score':>8} {'PARC':>7} {'probe':>6}")
    entries = sorted(scores, key=lambda entry: -statistics.mean(accuracy[entry]))
    for entry in entries:
        row, values = scores[entry], accuracy[entry]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{entry:<22} {statistics.mean(values):6.1f} ± {spread:4.1f}% {row['logme']:8.4f} {row['hscore']:8.3f} {row['parc']:7.2f} {row['probe_accuracy'] * 100:5.1f}%")
    truth = [statistics.mean(accuracy[entry]) for entry in entries]
    taus = {metric: weightedtau([scores[entry][metric] for entry in entries], truth).statistic for metric in ["logme", "hscore", "parc", "probe_accuracy"]}
    print("weighted Kendall tau against fine-tuning: " + ", ".join(f"{metric} {tau:+.2f}" for metric, tau in taus.items()))
    print(json.dumps({"target": target, "tau": taus, "accuracy": accuracy}))
