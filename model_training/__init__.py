"""Training pipeline: parsed logs -> DeepLog LSTM + TF-IDF -> one MLflow model, registered and aliased."""
