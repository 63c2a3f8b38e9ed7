"""Model families: how each kind of model is trained (or fitted) and predicts."""
