"""Cost plan of a pipeline run: Snakemake's jobs priced in GPU-hours, memory and disk before a GPU is spent."""
