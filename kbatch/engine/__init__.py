"""How a command runs: plan partitions, start or join the cluster, route tasks by resource,
write parts and the manifest, and report."""
