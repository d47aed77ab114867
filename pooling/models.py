"""Models of the pooling app."""
