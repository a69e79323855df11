//! Watches whose events carry server-rendered Tables (`get -w`).

/// What kubectl sends to get `meta.k8s.io/v1` Tables, JSON as the fallback.
pub const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
