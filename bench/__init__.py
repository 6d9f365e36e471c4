"""`make bench`: every figure measured side by side with its baseline, in one run on one machine."""
