//! Admission: what the API server does to an object between decoding and storing it —
//! defaulting, validation, LimitRange defaults and bounds, ResourceQuota.

pub mod limit_range;
pub mod quota;
