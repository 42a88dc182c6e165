"""Evaluation of every model on every benchmark, multi-round and single-round (PAPER.md s7).

One job per model loads it once and runs every benchmark file: multi-round dialogues with
predicted-reference propagation, and the single-round protocol of Table 10.
"""

RUNS = [f"{bench}.{mode}" for bench in BENCHES for mode in ("multi", "single")]


def run_bench_file(run):
    bench, mode = run.split(".")
    return f"{R}/bench/{bench}.json" if mode == "multi" else f"{R}/bench/{bench}.single.json"


rule evaluate:
    """Greedy turn-by-turn answers citing the model's own earlier boxes; metrics per round."""
    input:
        model=lambda wc: model_dir(wc.model),
        benches=[run_bench_file(run) for run in RUNS],
    output:
        predictions=[f"{R}/eval/{{model}}/{run}.predictions.jsonl" for run in RUNS],
        metrics=[f"{R}/eval/{{model}}/{run}.json" for run in RUNS],
    params:
        runs=" ".join(f"{run}={run_bench_file(run)}" for run in RUNS),
        cfg=lambda wc: params_of("evaluate"),
    threads: 1
    log:
        f"{R}/logs/evaluate/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/evaluate/{{model}}.tsv"
    conda:
        "../../envs/eval.yaml"
    shell:
        "regionreasoner evaluate --config {CONFIG} --model {input.model} --run {params.runs} "
        "--out-dir $(dirname {output.metrics[0]}) > {log} 2>&1"
