//! Reading an action's arguments from the event.

use serde_json::Value;

pub(crate) fn number(arg: &Value) -> Result<u64, String> {
    arg.as_u64()
        .ok_or_else(|| format!("expected a non-negative integer, got {arg}"))
}

pub(crate) fn field<'a>(arg: &'a Value, name: &str) -> Result<&'a Value, String> {
    arg.get(name).ok_or_else(|| format!("missing field {name}"))
}
