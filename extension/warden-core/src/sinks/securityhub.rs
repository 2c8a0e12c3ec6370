//! AWS Security Hub: a finding in the AWS Security Finding Format (ASFF, schema
//! 2018-10-08), imported with BatchImportFindings under the account's default product.

use aws_sdk_securityhub::types::{
    AwsSecurityFinding, Resource, Severity as AsffSeverity, SeverityLabel,
};
use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime;

use super::function::MonitoredFunction;
use crate::schema::Severity;
use crate::schema::{Class, Finding};

/// Most findings in one BatchImportFindings request.
pub const MAX_BATCH: usize = 100;

/// The ASFF form of a finding.
pub fn asff(f: &Finding, t: &MonitoredFunction) -> AwsSecurityFinding {
    let at = DateTime::from_millis(f.time_unix_ms as i64)
        .fmt(Format::DateTime)
        .unwrap_or_default();
    let resource = Resource::builder()
        .r#type("AwsLambdaFunction")
        .id(t.function_arn())
        .region(&t.region)
        .build();
    let mut b = AwsSecurityFinding::builder()
        .schema_version("2018-10-08")
        .id(&f.id)
        .product_arn(format!(
            "arn:aws:securityhub:{}:{}:product/{}/default",
            t.region, t.account, t.account
        ))
        .product_name("Warden")
        .company_name("Warden")
        .generator_id(format!("warden/{}", f.class.as_str()))
        .aws_account_id(&t.account)
        .types(asff_type(f.class))
        .created_at(&at)
        .updated_at(&at)
        .first_observed_at(&at)
        .severity(
            AsffSeverity::builder()
                .label(label(f.severity))
                .original(f.score.to_string())
                .build(),
        )
        .confidence((f.score * 100.0).round() as i32)
        .title(truncate(
            &format!(
                "Warden: {} in {}",
                f.class.as_str().replace('_', " "),
                t.function
            ),
            256,
        ))
        .description(truncate(&description(f), 1024))
        .resources(resource)
        .product_fields("warden/finding_id", &f.id)
        .product_fields("warden/score", f.score.to_string())
        .product_fields("warden/function_version", &f.function_version);
    if let Some(r) = &f.request_id {
        b = b.product_fields("warden/request_id", r);
    }
    if !f.earlier_requests.is_empty() {
        // ProductFields values are strings of at most 2048 characters.
        b = b.product_fields(
            "warden/earlier_requests",
            truncate(&f.earlier_requests.join(","), 2048),
        );
    }
    b.build()
}

/// ASFF finding type, `namespace/category/classifier`.
pub fn asff_type(c: Class) -> &'static str {
    match c {
        Class::CommandInjection => "TTPs/Execution/Command Injection",
        Class::ReverseShell => "TTPs/Command and Control/Reverse Shell",
        Class::CryptoMining => "Effects/Resource Consumption/Cryptomining",
        Class::ExfiltrationEgress => "Effects/Data Exfiltration/Network Egress",
        Class::ExfiltrationResponse => "Effects/Data Exfiltration/Oversized Response",
        Class::CredentialTheft => "TTPs/Credential Access/Role Credentials",
        Class::Dropper => "TTPs/Execution/Payload From Scratch Directory",
        Class::Persistence => "TTPs/Persistence/Survives Invocation",
        Class::DenialOfWallet => "Effects/Resource Consumption/Denial of Wallet",
        Class::Probing => "TTPs/Discovery/Error Probing",
        Class::Anomaly => "Unusual Behaviors/Application/Lambda Invocation",
        Class::Tamper => "TTPs/Defense Evasion/Sensor Tampering",
    }
}

fn label(s: Severity) -> SeverityLabel {
    match s {
        Severity::Low => SeverityLabel::Low,
        Severity::Medium => SeverityLabel::Medium,
        Severity::High => SeverityLabel::High,
        Severity::Critical => SeverityLabel::Critical,
    }
}

/// The explanation in one paragraph: each top feature with its value and normal range.
fn description(f: &Finding) -> String {
    let mut parts: Vec<String> = f
        .explanation
        .iter()
        .take(4)
        .map(|e| match e.normal {
            Some([lo, hi]) => format!("{} = {} (normal {}..{})", e.feature, e.observed, lo, hi),
            None => format!("{} = {}", e.feature, e.observed),
        })
        .collect();
    if parts.is_empty() {
        parts.push("see the finding in the function's logs".into());
    }
    format!("Score {:.2}. {}.", f.score, parts.join("; "))
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}
