"""PBFT (Castro & Liskov 1999/2002): replicas, clients and their Byzantine behaviours (system ``pbft``)."""
