//! What a run reports: one line per invocation and a closing summary.

use serde::Serialize;
use serde_json::{json, Value};

/// One invocation as the client and the platform saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Invocation {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub index: usize,
    pub request_id: String,
    /// success, error, timeout or crash.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// Invoke request → response available to the caller (init included when cold).
    pub latency_ms: f64,
    pub cold: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_ms: Option<f64>,
    /// Process start → first /event/next of each extension, on a cold start.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extensions_ready_ms: Vec<(String, f64)>,
    pub duration_ms: f64,
    pub billed_ms: u64,
    pub memory_mb: u64,
    pub max_memory_mb: u64,
    /// runtimeDone → last extension back in /event/next.
    pub post_runtime_ms: f64,
    pub produced_bytes: usize,
}

impl Invocation {
    pub fn new(
        request_id: String,
        cold: bool,
        init_ms: Option<f64>,
        ready: Vec<(String, f64)>,
    ) -> Invocation {
        Invocation {
            kind: "invocation",
            index: 0,
            request_id,
            status: "success".into(),
            response: None,
            error: None,
            latency_ms: 0.0,
            cold,
            init_ms,
            extensions_ready_ms: ready,
            duration_ms: 0.0,
            billed_ms: 0,
            memory_mb: 0,
            max_memory_mb: 0,
            post_runtime_ms: 0.0,
            produced_bytes: 0,
        }
    }

    /// An invocation that never reached the function because init failed.
    pub fn init_failed(
        error_type: String,
        message: String,
        latency_ms: f64,
        ready: Vec<(String, f64)>,
    ) -> Invocation {
        let mut inv = Invocation::new(String::new(), true, None, ready);
        inv.latency_ms = latency_ms;
        inv.fail("crash", &error_type, &message);
        inv
    }

    /// A line of the events file that is not JSON: rejected before any invoke, as Lambda does.
    pub fn rejected(message: String) -> Invocation {
        let mut inv = Invocation::new(String::new(), false, None, Vec::new());
        inv.fail("error", "InvalidRequestContentException", &message);
        inv
    }

    pub fn fail(&mut self, status: &str, error_type: &str, message: &str) {
        self.status = status.into();
        self.response = None;
        self.error = Some(json!({"errorType": error_type, "errorMessage": message}));
    }

    pub fn set_error_type(&mut self, error_type: &str) {
        if let Some(Value::Object(map)) = self.error.as_mut() {
            map.entry("errorType").or_insert_with(|| json!(error_type));
        } else {
            self.error = Some(json!({"errorType": error_type, "errorMessage": self.error}));
        }
    }

    pub fn error_type(&self) -> Option<String> {
        self.error
            .as_ref()?
            .get("errorType")?
            .as_str()
            .map(str::to_string)
    }
}

/// Totals and medians over a run.
#[derive(Debug, Default)]
pub struct Summary {
    lines: Vec<Invocation>,
}

impl Summary {
    pub fn add(&mut self, inv: &Invocation) {
        self.lines.push(inv.clone());
    }

    pub fn to_json(&self, isolated: bool) -> Value {
        let count = |s: &str| self.lines.iter().filter(|i| i.status == s).count();
        let warm: Vec<&Invocation> = self
            .lines
            .iter()
            .filter(|i| !i.cold && !i.request_id.is_empty())
            .collect();
        json!({
            "type": "summary",
            "invocations": self.lines.len(),
            "success": count("success"),
            "error": count("error"),
            "timeout": count("timeout"),
            "crash": count("crash"),
            "cold_starts": self.lines.iter().filter(|i| i.cold).count(),
            "isolated": isolated,
            "median_latency_ms": median(self.lines.iter().filter(|i| !i.request_id.is_empty()).map(|i| i.latency_ms).collect()),
            "median_warm_latency_ms": median(warm.iter().map(|i| i.latency_ms).collect()),
            "median_post_runtime_ms": median(warm.iter().map(|i| i.post_runtime_ms).collect()),
            "median_init_ms": median(self.lines.iter().filter_map(|i| i.init_ms).collect()),
            "max_memory_mb": self.lines.iter().map(|i| i.max_memory_mb).max().unwrap_or(0),
        })
    }
}

pub fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

/// One human-readable line per invocation, for the sandbox's stderr.
pub fn describe(inv: &Invocation) -> String {
    let id = if inv.request_id.is_empty() {
        "-".to_string()
    } else {
        inv.request_id[..8.min(inv.request_id.len())].to_string()
    };
    let mut line = format!(
        "[sandbox] #{:<4} {id} {:<7} latency {:>8.2} ms  billed {:>5} ms  post-runtime {:>6.3} ms  max mem {:>4} MB",
        inv.index, inv.status, inv.latency_ms, inv.billed_ms, inv.post_runtime_ms, inv.max_memory_mb
    );
    if let Some(init) = inv.init_ms {
        line.push_str(&format!("  (cold, init {init:.1} ms)"));
    }
    if let Some(t) = inv.error_type() {
        line.push_str(&format!("  {t}"));
    }
    line
}

#[cfg(test)]
mod tests {
    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(super::median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(super::median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(super::median(vec![]), None);
    }
}
