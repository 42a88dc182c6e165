"""Tables and figures of the paper, each one target, each from computed evaluation outputs.

Every rule here is a `localrule`: on a cluster they run beside Snakemake itself (seconds of CPU
each, reading small JSON files), not as batch jobs that would wait in the queue for a node.
"""


# One rule per table and per figure: each output gets its own caption in the HTML report, and
# `snakemake <table>` needs nothing beyond that table's inputs.
for table_name in TABLE_NAMES:

    rule:
        """One table (Markdown + LaTeX), reproduced beside reported where the paper has a number."""
        name:
            f"table_{table_name}"
        localrule: True
        input:
            table_inputs(CFG, table_name),
        output:
            md=report(f"{R}/tables/{table_name}.md", caption=f"../report/{table_name}.rst", category="Tables"),
            tex=f"{R}/tables/{table_name}.tex",
        params:
            config=CONFIG,
            name=table_name,
            cfg=params_of("report"),
        log:
            f"{R}/logs/tables/{table_name}.log",
        conda:
            "../../envs/report.yaml"
        shell:
            "regionreasoner table --configfile {params.config} --name {params.name} "
            "--out-md {output.md} --out-tex {output.tex} > {log} 2>&1"


for figure_name in FIGURE_NAMES:

    rule:
        """One figure (PNG + PDF) drawn with matplotlib from evaluation and training outputs."""
        name:
            f"figure_{figure_name}"
        localrule: True
        input:
            figure_inputs(CFG, figure_name),
        output:
            png=report(f"{R}/figures/{figure_name}.png", caption=f"../report/{figure_name}.rst", category="Figures"),
            pdf=f"{R}/figures/{figure_name}.pdf",
        params:
            config=CONFIG,
            name=figure_name,
            cfg=params_of("report"),
        log:
            f"{R}/logs/figures/{figure_name}.log",
        conda:
            "../../envs/report.yaml"
        shell:
            "regionreasoner figure --configfile {params.config} --name {params.name} --out {output.png} > {log} 2>&1"


rule figure_curves:
    """One trained model's checkpoint curve: validation AP@0.5 and held-out reward by step, the chosen one marked."""
    localrule: True
    input:
        lambda wc: figure_inputs(CFG, curve_figure(wc.model)),
    output:
        png=report(str(figure_files(CFG, curve_figure("{model}"))[0]), caption="../report/fig_curves.rst", category="Figures"),
        pdf=str(figure_files(CFG, curve_figure("{model}"))[1]),
    params:
        config=CONFIG,
        name=lambda wc: curve_figure(wc.model),
        cfg=params_of("report"),
    wildcard_constraints:
        model="|".join(m.replace(".", r"\.") for m in TRAINED),
    log:
        f"{R}/logs/figures/{curve_figure('{model}')}.log",
    conda:
        "../../envs/report.yaml"
    shell:
        "regionreasoner figure --configfile {params.config} --name {params.name} --out {output.png} > {log} 2>&1"


rule turns_per_round_figure:
    """The benchmark's turns-per-round histogram, drawn by a Jupyter notebook (Table 6 as a figure)."""
    localrule: True
    input:
        figure_inputs(CFG, "fig_turns_per_round"),
    output:
        png=report(f"{R}/figures/fig_turns_per_round.png", caption="../report/fig_turns_per_round.rst", category="Figures"),
        pdf=f"{R}/figures/fig_turns_per_round.pdf",
    params:
        config=CONFIG,
        benches=BENCHES,
    log:
        notebook=f"{R}/logs/notebooks/turns_per_round.ipynb",
    conda:
        "../../envs/report.yaml"
    notebook:
        "../notebooks/turns_per_round.py.ipynb"


rule paper_pdf:
    """paper/main.tex compiled with the generated tables and figures (needs latexmk; one target, not in `all`)."""
    localrule: True
    input:
        tex="paper/main.tex",
        tables=TABLES_TEX,
        figures=FIGURES_PDF,
    output:
        pdf=PAPER_PDF,
    params:
        results=os.path.abspath(R),
        outdir=lambda wc, output: os.path.abspath(os.path.dirname(output.pdf)),
    log:
        f"{R}/logs/paper_pdf.log",
    benchmark:
        f"{R}/benchmarks/paper_pdf.tsv"
    conda:
        "../../envs/report.yaml"
    shell:
        "latexmk -pdf -cd -interaction=nonstopmode -halt-on-error -outdir={params.outdir} "
        "-usepretex='\\def\\resultsdir{{{params.results}}}' {input.tex} > {log} 2>&1"
