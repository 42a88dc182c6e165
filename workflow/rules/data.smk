"""Data: procedural refer datasets (embedded default) or checksummed downloads (paper scale)."""


# One synth rule per benchmark: the refer file name carries the benchmark's splitBy (refs(unc).p).
for bench_name, bench_cfg in CFG.benchmarks.items() if CFG.data.source == "synth" else ():

    rule:
        """Procedural scenes in the real refer/COCO on-disk formats for one benchmark."""
        name:
            f"synth_{bench_name}"
        output:
            refs=f"{R}/data/synth/{bench_name}/refs({bench_cfg.split_by}).p",
            instances=f"{R}/data/synth/{bench_name}/instances.json",
            captions=f"{R}/data/synth/{bench_name}/captions.json",
            images=directory(f"{R}/data/synth/{bench_name}/images"),
        params:
            config=CONFIG,
            seed=bench_cfg.synth_seed,
            split_by=bench_cfg.split_by,
            cfg=params_of("data"),
        log:
            f"{R}/logs/synth/{bench_name}.log",
        benchmark:
            f"{R}/benchmarks/synth/{bench_name}.tsv"
        conda:
            "../../envs/data.yaml"
        shell:
            "regionreasoner synth --configfile {params.config} --out $(dirname {output.instances}) "
            "--seed {params.seed} --split-by {params.split_by} > {log} 2>&1"


if CFG.data.source == "download":

    rule download:
        """COCO train2014, captions and the refer zips, sha256-verified and resumable (paper scale)."""
        output:
            refer=sorted({refer_files(b)[k] for b in BENCHES for k in ("refs", "instances")}),
            captions=refer_files(BENCHES[0])["captions"],
            images=directory(refer_files(BENCHES[0])["images"]),
        params:
            config=CONFIG,
            raw=f"{R}/data/raw",
            cfg=lambda wc: params_of("data"),
        log:
            f"{R}/logs/download.log",
        conda:
            "../../envs/data.yaml"
        shell:
            "regionreasoner download --configfile {params.config} --out {params.raw} > {log} 2>&1"
