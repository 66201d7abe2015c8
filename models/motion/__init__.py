"""Audio to face motion: CoarseNet, RefineNet, the sync expert, training and evaluation."""
