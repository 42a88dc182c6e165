"""Tables and figures of the paper rebuilt from evaluation outputs, beside the reported numbers."""
