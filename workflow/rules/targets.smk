"""Paper-scale targets by purpose: spend GPU-hours on one purpose at a time (README, docs/cluster.md).

`regionreasoner plan --configfile config/paper.yaml <target>` prices each before it runs.
"""


for purpose in PURPOSES:

    rule:
        """One purpose's outputs (regionreasoner.report.targets.PURPOSES)."""
        name:
            purpose
        input:
            purpose_inputs(config, purpose),
