"""The base model: the tiny Qwen2.5-VL built locally, or a hub checkpoint at paper scale."""

if CFG.model.base == "tiny":

    rule build_model:
        """Tiny Qwen2.5-VL with random init and a tokenizer trained on the training turns."""
        input:
            turns=f"{R}/train/turns.jsonl",
        output:
            model=directory(model_dir("base")),
        params:
            config=CONFIG,
            cfg=lambda wc: params_of("model"),
        log:
            f"{R}/logs/build_model.log",
        conda:
            "../../envs/train.yaml"
        shell:
            "regionreasoner build-model --configfile {params.config} --turns {input.turns} --out {output.model} > {log} 2>&1"

else:

    rule prepare_model:
        """Fetch the base checkpoint (Qwen2.5-VL-7B-Instruct) from the hub or copy a local folder."""
        output:
            model=directory(model_dir("base")),
        params:
            config=CONFIG,
            source=CFG.model.base,
        log:
            f"{R}/logs/prepare_model.log",
        conda:
            "../../envs/train.yaml"
        shell:
            "regionreasoner fetch-model --source {params.source} --out {output.model} > {log} 2>&1"


rule fetch_released:
    """A released checkpoint (VisionReasoner-7B, Seg-Zero-7B, RegionReasoner-7B) for evaluation only."""
    output:
        model=directory(model_dir("released-{name}")),
    params:
        config=CONFIG,
        source=lambda wc: CFG.model.released[wc.name],
    log:
        f"{R}/logs/fetch_released/{{name}}.log",
    conda:
        "../../envs/train.yaml"
    shell:
        "regionreasoner fetch-model --source {params.source} --out {output.model} > {log} 2>&1"
