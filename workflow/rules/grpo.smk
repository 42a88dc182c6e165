"""GRPO (TRL GRPOTrainer) with one reward variant per wildcard (Tables 1-4, 11)."""


rule grpo:
    """GRPO from the warm-up (or base) checkpoint with the variant's reward terms and weights."""
    input:
        model=lambda wc: grpo_init(wc.variant),
        train=f"{R}/train/turns.jsonl",
    output:
        model=directory(model_dir("grpo-{variant}")),
        metrics=paths.train_metrics(R, "grpo-{variant}"),
        kept=directory(paths.kept_checkpoints(R, "grpo-{variant}")),
    params:
        config=CONFIG,
        cfg=lambda wc: params_of("grpo", variant=wc.variant),
    threads: CFG.grpo.threads
    resources:
        gpu=CFG.grpo.gpus,
    log:
        f"{R}/logs/grpo/{{variant}}.log",
    benchmark:
        f"{R}/benchmarks/grpo/{{variant}}.tsv"
    conda:
        "../../envs/train.yaml"
    shell:
        "regionreasoner grpo --configfile {params.config} --variant {wildcards.variant} --model {input.model} "
        "--train {input.train} --out {output.model} --metrics {output.metrics} --kept {output.kept} > {log} 2>&1"
