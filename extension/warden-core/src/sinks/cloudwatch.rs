//! PutMetricData: closed metric windows as CloudWatch datums, batched within the API's
//! limits (1,000 datums and 1 MB a request, 150 values a datum).

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use aws_smithy_types::DateTime;

use super::metrics::{Batch, Series, Unit};

/// Most datums in one request.
pub const MAX_DATUMS: usize = 1_000;
/// Request size budget, under the API's 1 MB with room for the envelope.
pub const MAX_REQUEST_BYTES: usize = 900_000;
/// Rough encoded size of one datum and of one value in the query protocol.
const DATUM_BYTES: usize = 400;
const VALUE_BYTES: usize = 60;

/// The datums of one batch, with their estimated encoded size.
pub fn datums(batch: &Batch, function: &str, version: &str) -> Vec<(MetricDatum, usize)> {
    let at = DateTime::from_millis(batch.time_unix_ms as i64);
    let mut out = Vec::new();
    for s in &batch.series {
        let mut dims = vec![dim("FunctionName", function)];
        if let Some((name, value)) = &s.dimension {
            dims.push(dim(name, value));
        }
        out.push(datum(s, dims.clone(), at));
        if s.per_version {
            dims.push(dim("FunctionVersion", version));
            out.push(datum(s, dims, at));
        }
    }
    out
}

/// Splits datums into requests that respect the limits.
pub fn requests(datums: Vec<(MetricDatum, usize)>) -> Vec<Vec<MetricDatum>> {
    let mut out: Vec<Vec<MetricDatum>> = Vec::new();
    let mut size = 0;
    for (d, bytes) in datums {
        let full = out
            .last()
            .is_none_or(|r| r.len() >= MAX_DATUMS || size + bytes > MAX_REQUEST_BYTES);
        if full {
            out.push(Vec::new());
            size = 0;
        }
        size += bytes;
        if let Some(r) = out.last_mut() {
            r.push(d);
        }
    }
    out
}

fn datum(s: &Series, dims: Vec<Dimension>, at: DateTime) -> (MetricDatum, usize) {
    let values: Vec<f64> = s.values.iter().map(|(v, _)| *v).collect();
    let counts: Vec<f64> = s.values.iter().map(|(_, n)| f64::from(*n)).collect();
    let bytes = DATUM_BYTES + VALUE_BYTES * values.len() * 2;
    let d = MetricDatum::builder()
        .metric_name(s.name)
        .set_dimensions(Some(dims))
        .timestamp(at)
        .set_values(Some(values))
        .set_counts(Some(counts))
        .unit(unit(s.unit))
        .storage_resolution(s.resolution)
        .build();
    (d, bytes)
}

fn dim(name: &str, value: &str) -> Dimension {
    let value = if value.is_empty() { "unknown" } else { value };
    Dimension::builder().name(name).value(value).build()
}

fn unit(u: Unit) -> StandardUnit {
    match u {
        Unit::None => StandardUnit::None,
        Unit::Count => StandardUnit::Count,
        Unit::Microseconds => StandardUnit::Microseconds,
        Unit::Kilobytes => StandardUnit::Kilobytes,
    }
}
