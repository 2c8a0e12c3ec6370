"""The scenario corpus: functions, workloads, attacks and the runner behind scripts/scenarios."""
