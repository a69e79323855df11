//! The workload controllers' pure cores: each reconcile compares desired with observed state
//! and returns the effects to apply (plan, then act); the shells that watch and apply live
//! beside them.
