"""Evaluation: detection mAP and the runs behind the reported numbers."""
