"""Training: the data sets, the supernet and the later stages of neulens-train."""
