"""Reading inputs into partitions and writing outputs atomically."""
