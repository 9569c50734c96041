"""Instance backends: where instances actually live (simulated in virtual time, or real local processes)."""
