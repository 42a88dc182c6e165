"""Evaluation of every model on every benchmark, multi-round and single-round (docs/method.md section 7).

One job per model loads it once and runs every benchmark file: multi-round dialogues with
predicted-reference propagation, and the single-round protocol of Table 10.
"""

rule evaluate:
    """Greedy turn-by-turn answers citing the model's own earlier boxes; metrics per round."""
    input:
        model=lambda wc: evaluated_model(wc.model),
        benches=[run_bench_file(run) for run in RUNS],
        segmenter=SEGMENTER_WEIGHTS,
    output:
        predictions=[paths.eval_predictions(R, "{model}", bench, mode) for bench, mode in RUN_PAIRS],
        metrics=[paths.eval_metrics(R, "{model}", bench, mode) for bench, mode in RUN_PAIRS],
    params:
        config=CONFIG,
        runs=" ".join(f"{run}={run_bench_file(run)}" for run in RUNS),
        cfg=lambda wc: params_of("evaluate", model=wc.model),
        segmenter=" ".join(f"--segmenter-weights {w}" for w in SEGMENTER_WEIGHTS),
    wildcard_constraints:
        model="|".join(m.replace(".", r"\.") for m in MODELS if m != "random"),
    threads: CFG.evaluate.threads
    resources:
        gpu=CFG.evaluate.gpus,
    log:
        f"{R}/logs/evaluate/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/evaluate/{{model}}.tsv"
    conda:
        "../../envs/eval.yaml"
    shell:
        "regionreasoner evaluate --configfile {params.config} --model {input.model} --model-id {wildcards.model} "
        "--run {params.runs} {params.segmenter} "
        "--out-dir $(dirname {output.metrics[0]}) > {log} 2>&1"


rule evaluate_random:
    """The random-object baseline: each turn answers a uniformly drawn annotated object (chance level)."""
    input:
        benches=[run_bench_file(run) for run in RUNS],
        instances=[refer_files(bench)["instances"] for bench in BENCHES],
    output:
        predictions=[paths.eval_predictions(R, "random", bench, mode) for bench, mode in RUN_PAIRS],
        metrics=[paths.eval_metrics(R, "random", bench, mode) for bench, mode in RUN_PAIRS],
    params:
        runs=" ".join(f"{run}={run_bench_file(run)}" for run in RUNS),
        instances=" ".join(f"{bench}={refer_files(bench)['instances']}" for bench in BENCHES),
        seed=CFG.seed,
    log:
        f"{R}/logs/evaluate/random.log",
    conda:
        "../../envs/eval.yaml"
    shell:
        "regionreasoner baseline-random --run {params.runs} --instances {params.instances} "
        "--seed {params.seed} --out-dir $(dirname {output.metrics[0]}) > {log} 2>&1"


rule probe:
    """Held-out reward probe: GRPO-style samples on fixed held-out turns, scored with one reward variant."""
    input:
        model=lambda wc: evaluated_model(wc.model),
        prompts=paths.heldout_turns(R),
    output:
        summary=paths.probe_metrics(R, "{model}"),
    params:
        config=CONFIG,
        cfg=lambda wc: params_of("probe"),
    threads: CFG.evaluate.threads
    resources:
        gpu=CFG.evaluate.gpus,
    log:
        f"{R}/logs/probe/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/probe/{{model}}.tsv"
    conda:
        "../../envs/eval.yaml"
    shell:
        "regionreasoner probe --configfile {params.config} --model {input.model} --prompts {input.prompts} "
        "--out {output.summary} > {log} 2>&1"


if CFG.evaluate.segmenter == "sam2":

    rule fetch_segmenter:
        """SAM2 weights, fetched on a CPU node: evaluation jobs on GPUs never download."""
        output:
            weights=directory(SEGMENTER_WEIGHTS),
        params:
            source=paths.SAM2_MODEL,
        log:
            f"{R}/logs/fetch_segmenter.log",
        conda:
            "../../envs/eval.yaml"
        shell:
            "regionreasoner fetch-model --source {params.source} --out {output.weights} > {log} 2>&1"


if CFG.vstar is not None:
    VSTAR_BENCH = paths.snapshot_dir(R, CFG.vstar.snapshot)

    rule fetch_vstar:
        """V*Bench (Table 9) at its pinned hub revision, verified by its tree sha256 (data manifest)."""
        output:
            bench=directory(VSTAR_BENCH),
        params:
            config=CONFIG,
            name=CFG.vstar.snapshot,
            root=lambda wc, output: os.path.dirname(output.bench),
        log:
            f"{R}/logs/fetch_vstar.log",
        conda:
            "../../envs/data.yaml"
        shell:
            "regionreasoner fetch-snapshot --configfile {params.config} --name {params.name} "
            "--out {params.root} > {log} 2>&1"

    rule evaluate_vstar:
        """V*Bench accuracy of one model: each option scored by its likelihood, as the benchmark's code does."""
        input:
            model=lambda wc: evaluated_model(wc.model),
            bench=VSTAR_BENCH,
        output:
            metrics=paths.vstar_metrics(R, "{model}"),
            answers=paths.vstar_answers(R, "{model}"),
        params:
            config=CONFIG,
            cfg=lambda wc: params_of("evaluate", model=wc.model),
        wildcard_constraints:
            model="|".join(m.replace(".", r"\.") for m in CFG.vstar.models),
        threads: CFG.evaluate.threads
        resources:
            gpu=CFG.evaluate.gpus,
        log:
            f"{R}/logs/evaluate_vstar/{{model}}.log",
        benchmark:
            f"{R}/benchmarks/evaluate_vstar/{{model}}.tsv"
        conda:
            "../../envs/eval.yaml"
        shell:
            "regionreasoner evaluate-vstar --configfile {params.config} --model {input.model} --model-id {wildcards.model} "
            "--bench {input.bench} --out {output.metrics} > {log} 2>&1"
