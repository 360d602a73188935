"""Export: converters to Keras and TFLite variants, parity gates and the model card."""
