"""Checkpoint curves (docs/method.md section 8): each trained model's kept checkpoints and its final
model scored on the validation dialogues and by the held-out reward probe; evaluate.checkpoint
picks the checkpoint the tables evaluate from those scores alone (regionreasoner.evaluate.curves)."""


VALIDATION_RUNS = " ".join(
    f"{paths.run_name(bench, VALIDATION_MODE)}={paths.validation_bench(R, bench)}" for bench in BENCHES
)


rule evaluate_checkpoint:
    """One curve point on the validation dialogues: the evaluate code path, boxes only (AP@0.5)."""
    input:
        model=lambda wc: point_input(CFG, wc.model, int(wc.step)),
        benches=[paths.validation_bench(R, bench) for bench in BENCHES],
    output:
        metrics=[validation_metrics(CFG, "{model}", "{step}", bench) for bench in BENCHES],
    params:
        config=CONFIG,
        checkpoint=lambda wc: point_checkpoint(CFG, wc.model, int(wc.step)),
        runs=VALIDATION_RUNS,
        cfg=lambda wc: params_of("evaluate", model=wc.model),
    wildcard_constraints:
        model="|".join(m.replace(".", r"\.") for m in TRAINED),
        step=r"\d+",
    threads: CFG.evaluate.threads
    resources:
        gpu=CFG.evaluate.gpus,
    log:
        f"{R}/logs/evaluate_checkpoint/{{model}}/step-{{step}}.log",
    conda:
        "../../envs/eval.yaml"
    shell:
        "regionreasoner evaluate --configfile {params.config} --model {params.checkpoint} "
        "--model-id {wildcards.model} --run {params.runs} --boxes-only "
        "--out-dir $(dirname {output.metrics[0]}) > {log} 2>&1"


rule probe_checkpoint:
    """Held-out reward probe of one curve point (the final model's is the probe rule's under `last`)."""
    input:
        model=lambda wc: point_input(CFG, wc.model, int(wc.step)),
        prompts=paths.heldout_turns(R),
    output:
        summary=f"{paths.curve_point(R, '{model}', '{step}')}/probe.json",
    params:
        config=CONFIG,
        checkpoint=lambda wc: point_checkpoint(CFG, wc.model, int(wc.step)),
        cfg=lambda wc: params_of("probe"),
    wildcard_constraints:
        model="|".join(m.replace(".", r"\.") for m in TRAINED),
        step=r"\d+",
    threads: CFG.evaluate.threads
    resources:
        gpu=CFG.evaluate.gpus,
    log:
        f"{R}/logs/probe_checkpoint/{{model}}/step-{{step}}.log",
    conda:
        "../../envs/eval.yaml"
    shell:
        "regionreasoner probe --configfile {params.config} --model {params.checkpoint} --prompts {input.prompts} "
        "--out {output.summary} > {log} 2>&1"


rule curve:
    """A trained model's checkpoint curve and the step evaluate.checkpoint chooses (validation files only)."""
    localrule: True
    input:
        lambda wc: curve_inputs(CFG, wc.model),
    output:
        curve=paths.curve(R, "{model}"),
    params:
        config=CONFIG,
        cfg=lambda wc: params_of("curves"),
    wildcard_constraints:
        model="|".join(m.replace(".", r"\.") for m in TRAINED),
    log:
        f"{R}/logs/curve/{{model}}.log",
    conda:
        "../../envs/eval.yaml"
    shell:
        "regionreasoner curve --configfile {params.config} --model-id {wildcards.model} --out {output.curve} > {log} 2>&1"


if CFG.evaluate.checkpoint == "best_validation":

    rule select_checkpoint:
        """The chosen checkpoint as a model folder (hard links) for the tables' evaluation and probe."""
        input:
            curve=paths.curve(R, "{model}"),
            candidates=lambda wc: sorted({point_input(CFG, wc.model, s) for s in CFG.curve_steps(wc.model)}),
        output:
            model=directory(paths.selected_model(R, "{model}")),
        wildcard_constraints:
            model="|".join(m.replace(".", r"\.") for m in TRAINED),
        log:
            f"{R}/logs/select_checkpoint/{{model}}.log",
        conda:
            "../../envs/eval.yaml"
        shell:
            "regionreasoner select-checkpoint --curve {input.curve} --out {output.model} > {log} 2>&1"
