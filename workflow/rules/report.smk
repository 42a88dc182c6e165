"""Tables and figures of the paper, each one target, each from computed evaluation outputs."""


rule table:
    """One table (Markdown + LaTeX), reproduced beside reported where the paper has a number."""
    input:
        lambda wc: table_inputs(config, wc.name),
    output:
        md=report(f"{R}/tables/{{name}}.md", caption="../report/{name}.rst", category="Tables"),
        tex=f"{R}/tables/{{name}}.tex",
    params:
        cfg=lambda wc: params_of("report"),
    wildcard_constraints:
        name="|".join(TABLE_NAMES),
    log:
        f"{R}/logs/tables/{{name}}.log",
    conda:
        "../../envs/report.yaml"
    shell:
        "regionreasoner table --config {CONFIG} --name {wildcards.name} "
        "--out-md {output.md} --out-tex {output.tex} > {log} 2>&1"


rule figure:
    """One figure (PNG + PDF) drawn with matplotlib from evaluation and training outputs."""
    input:
        lambda wc: figure_inputs(config, wc.name),
    output:
        png=report(f"{R}/figures/{{name}}.png", caption="../report/{name}.rst", category="Figures"),
        pdf=f"{R}/figures/{{name}}.pdf",
    params:
        cfg=lambda wc: params_of("report"),
    wildcard_constraints:
        name="|".join(FIGURE_NAMES),
    log:
        f"{R}/logs/figures/{{name}}.log",
    conda:
        "../../envs/report.yaml"
    shell:
        "regionreasoner figure --config {CONFIG} --name {wildcards.name} --out {output.png} > {log} 2>&1"


rule turns_per_round_figure:
    """The benchmark's turns-per-round histogram, drawn by a Jupyter notebook (Table 6 as a figure)."""
    input:
        datasheets=expand(f"{R}/bench/{{bench}}.datasheet.json", bench=BENCHES),
    output:
        png=report(f"{R}/figures/fig_turns_per_round.png", caption="../report/fig_turns_per_round.rst", category="Figures"),
        pdf=f"{R}/figures/fig_turns_per_round.pdf",
    params:
        benches=BENCHES,
    log:
        notebook=f"{R}/logs/notebooks/turns_per_round.ipynb",
    conda:
        "../../envs/report.yaml"
    notebook:
        "../notebooks/turns_per_round.py.ipynb"
