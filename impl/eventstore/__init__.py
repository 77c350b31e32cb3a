"""An event store with aggregates, snapshots and a projection (system ``eventstore``)."""
