"""Real servers on loopback for the fault drills, the schema fuzzing and the load runs."""
