//! Amazon EventBridge: each finding as an event (`source` = `warden`, `detail-type` =
//! `Warden Finding`, `detail` = the finding line), for rules that start SOAR playbooks.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::function::MonitoredFunction;
use crate::schema::Finding;

/// Most entries in one PutEvents request.
pub const MAX_BATCH: usize = 10;
/// The event's `source`.
pub const SOURCE: &str = "warden";
/// The event's `detail-type`.
pub const DETAIL_TYPE: &str = "Warden Finding";
/// An entry's limit is 256 KB; evidence is dropped from larger findings.
const MAX_DETAIL: usize = 200_000;

/// The PutEvents entry for a finding.
pub fn entry(f: &Finding, t: &MonitoredFunction, bus: &str) -> PutEventsRequestEntry {
    let mut detail = serde_json::to_string(f).unwrap_or_default();
    if detail.len() > MAX_DETAIL {
        let mut smaller = f.clone();
        smaller.evidence.clear();
        detail = serde_json::to_string(&smaller).unwrap_or_default();
    }
    PutEventsRequestEntry::builder()
        .source(SOURCE)
        .detail_type(DETAIL_TYPE)
        .detail(detail)
        .resources(t.function_arn())
        .event_bus_name(bus)
        .build()
}
