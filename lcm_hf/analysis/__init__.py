"""Analysis of trained models: cross-attention maps (:mod:`.attention`), their figures and report
(:mod:`.plots`), and the model-scale study (:mod:`.scaling`)."""
