"""Models: where a name resolves to (and its content identity), loading encoders once per
worker, and batching token ids for them."""
