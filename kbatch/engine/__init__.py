"""How a command runs: plan partitions, start or join the cluster (a script
without its main guard is stopped first), route tasks by resource,
write parts and the manifest, and report."""
