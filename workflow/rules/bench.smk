"""RegionDial-Bench test dialogues, validation dialogues and training turns (docs/method.md sections 2-3, 8)."""


if CFG.bench.source == "released":

    rule fetch_released_bench:
        """The authors' released RegionDial-Bench files (paper scale; hub dataset)."""
        output:
            root=directory(f"{R}/data/released_bench"),
        params:
            repo=CFG.bench.released.repo,
            files=" ".join(CFG.bench.released.files.values()),
        log:
            f"{R}/logs/fetch_released_bench.log",
        conda:
            "../../envs/data.yaml"
        shell:
            "regionreasoner fetch-released --repo {params.repo} --files {params.files} --out {output.root} > {log} 2>&1"

    rule build_bench:
        """RegionDial-Bench from the authors' released files instead of building it."""
        input:
            root=f"{R}/data/released_bench",
        output:
            bench=paths.bench_file(R, "{bench}"),
            datasheet=paths.datasheet(R, "{bench}", ".md"),
            datasheet_json=paths.datasheet(R, "{bench}"),
        params:
            raw=lambda wc, input: f"{input.root}/{CFG.bench.released.files[wc.bench]}",
        log:
            f"{R}/logs/build_bench/{{bench}}.log",
        conda:
            "../../envs/data.yaml"
        shell:
            "regionreasoner convert-released --name {wildcards.bench} --raw {params.raw} "
            "--out {output.bench} --datasheet {output.datasheet} > {log} 2>&1"

else:

    rule build_bench:
        """Multi-round test dialogues whose later turns cite an earlier turn's box, plus a datasheet."""
        input:
            unpack(refer_inputs),
        output:
            bench=paths.bench_file(R, "{bench}"),
            datasheet=paths.datasheet(R, "{bench}", ".md"),
            datasheet_json=paths.datasheet(R, "{bench}"),
        params:
            config=CONFIG,
            splits=lambda wc: " ".join(CFG.benchmarks[wc.bench].test_splits),
            cfg=lambda wc: params_of("bench"),
            seed=CFG.seed,
        log:
            f"{R}/logs/build_bench/{{bench}}.log",
        benchmark:
            f"{R}/benchmarks/build_bench/{{bench}}.tsv"
        conda:
            "../../envs/data.yaml"
        shell:
            "regionreasoner build-bench --configfile {params.config} --name {wildcards.bench} --refs '{input.refs}' "
            "--instances {input.instances} --captions {input.captions} --images {input.images} "
            "--splits {params.splits} --seed {params.seed} --out {output.bench} "
            "--datasheet {output.datasheet} > {log} 2>&1"


rule build_single:
    """The single-round protocol of Table 10: every turn asked alone by its referring sentence."""
    input:
        bench=paths.bench_file(R, "{bench}"),
    output:
        bench=paths.bench_file(R, "{bench}", "single"),
    log:
        f"{R}/logs/build_single/{{bench}}.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "regionreasoner build-single --bench {input.bench} --out {output.bench} > {log} 2>&1"


rule build_train:
    """Training turns from the train splits, later sub-queries citing a ground-truth box."""
    input:
        unpack(refer_inputs),
    output:
        turns=f"{R}/train/{{bench}}.jsonl",
    params:
        config=CONFIG,
        splits=lambda wc: " ".join(CFG.benchmarks[wc.bench].train_splits),
        cfg=lambda wc: params_of("train_data"),
        seed=CFG.seed,
    log:
        f"{R}/logs/build_train/{{bench}}.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "regionreasoner build-train --configfile {params.config} --refs '{input.refs}' --instances {input.instances} "
        "--captions {input.captions} --images {input.images} --splits {params.splits} "
        "--seed {params.seed} --out {output.turns} > {log} 2>&1"


rule merge_train:
    """One training set over all benchmarks' train splits."""
    input:
        expand(f"{R}/train/{{bench}}.jsonl", bench=BENCHES),
    output:
        turns=f"{R}/train/turns.jsonl",
    log:
        f"{R}/logs/merge_train.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "regionreasoner merge-turns {input} --out {output.turns} > {log} 2>&1"


rule build_validation:
    """Validation dialogues: built like the benchmark from the held-out images, never the test splits."""
    input:
        unpack(refer_inputs),
    output:
        bench=paths.validation_bench(R, "{bench}"),
    params:
        config=CONFIG,
        splits=lambda wc: " ".join(CFG.benchmarks[wc.bench].probe_splits),
        dialogues=CFG.evaluate.validation_dialogues,
        cfg=lambda wc: params_of("validation"),
        seed=CFG.seed,
    log:
        f"{R}/logs/build_validation/{{bench}}.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "regionreasoner build-bench --configfile {params.config} --refs '{input.refs}' "
        "--instances {input.instances} --captions {input.captions} --images {input.images} "
        "--splits {params.splits} --seed {params.seed} --max-dialogues {params.dialogues} "
        "--out {output.bench} > {log} 2>&1"


use rule build_train as build_heldout with:
    output:
        turns=paths.heldout_turns(R, "{bench}"),
    params:
        splits=lambda wc: " ".join(CFG.benchmarks[wc.bench].probe_splits),
    log:
        f"{R}/logs/build_heldout/{{bench}}.log",


use rule merge_train as merge_heldout with:
    input:
        [paths.heldout_turns(R, bench) for bench in BENCHES],
    output:
        turns=paths.heldout_turns(R),
    log:
        f"{R}/logs/merge_heldout.log",
