"""GRPO (TRL GRPOTrainer): one job per reward variant and seed, the {model} wildcard (Tables 1-4, 11)."""


rule grpo:
    """GRPO from the warm-up (or base) checkpoint with the variant's reward terms, weights and seed."""
    input:
        model=lambda wc: grpo_init(wc.model),
        train=f"{R}/train/turns.jsonl",
    output:
        model=directory(model_dir("{model}")),
        metrics=paths.train_metrics(R, "{model}"),
        kept=directory(paths.kept_checkpoints(R, "{model}")),
    params:
        config=CONFIG,
        variant=lambda wc: GRPO_RUNS[wc.model].variant,
        seed=lambda wc: GRPO_RUNS[wc.model].seed,
        cfg=lambda wc: params_of("grpo", variant=GRPO_RUNS[wc.model].variant, seed=GRPO_RUNS[wc.model].seed),
    wildcard_constraints:
        model="|".join(m.replace(".", r"\.") for m in GRPO_RUNS),
    threads: CFG.grpo.threads
    resources:
        gpu=CFG.grpo.gpus,
    log:
        f"{R}/logs/grpo/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/grpo/{{model}}.tsv"
    conda:
        "../../envs/train.yaml"
    shell:
        "regionreasoner grpo --configfile {params.config} --variant {params.variant} --seed {params.seed} "
        "--model {input.model} --train {input.train} --out {output.model} --metrics {output.metrics} "
        "--kept {output.kept} > {log} 2>&1"
