"""Runtime concerns shared by every local backend: device/dtype choice and batching."""
