"""The stages of neulens-train after the supernet: tile labels, gate, evaluation, export."""
