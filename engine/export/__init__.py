"""Export: merge an adapter into its base, verify the result, write the model card."""
