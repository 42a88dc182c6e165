"""SFT warm-up (TRL SFTTrainer): on in the embedded default, off in the paper config."""


rule sft:
    """Teach the base model the four-part output format on rendered targets."""
    input:
        model=model_dir("base"),
        train=f"{R}/train/turns.jsonl",
    output:
        model=directory(model_dir("sft")),
        metrics=paths.train_metrics(R, "sft"),
        kept=directory(paths.kept_checkpoints(R, "sft")),
    params:
        config=CONFIG,
        cfg=lambda wc: params_of("sft"),
    threads: CFG.sft.threads
    priority: 10  # the critical path: start it before the base model's evaluation and the random baseline
    resources:
        gpu=CFG.sft.gpus,
    log:
        f"{R}/logs/sft.log",
    benchmark:
        f"{R}/benchmarks/sft.tsv"
    conda:
        "../../envs/train.yaml"
    shell:
        "regionreasoner sft --configfile {params.config} --model {input.model} --train {input.train} "
        "--out {output.model} --metrics {output.metrics} --kept {output.kept} > {log} 2>&1"
