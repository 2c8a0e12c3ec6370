//! Which names (variables, options, JSON keys, headers) hold a secret.

/// Name parts that make a name sensitive when one of its parts (split at `-`, `_`, `.` and
/// lower-to-upper case changes) is exactly one of them: `--api-key`, `accessToken`, `X_AUTH`.
/// Whole parts only, so `--author`, `keyboard` and `--tokenizer` stay ordinary.
const PARTS: [&str; 20] = [
    "key",
    "apikey",
    "token",
    "secret",
    "secrets",
    "password",
    "passwd",
    "pass",
    "passphrase",
    "pwd",
    "pw",
    "auth",
    "authorization",
    "credential",
    "credentials",
    "cookie",
    "session",
    "signature",
    "sig",
    "private",
];

/// Substrings that make a name sensitive wherever they appear (`DBPASSWORD`, `clientsecret`).
const ANYWHERE: [&str; 7] = [
    "passw",
    "secret",
    "credential",
    "apikey",
    "accesskey",
    "privatekey",
    "authtoken",
];

/// Last parts that name where a secret is kept rather than the secret: `--key-file x.pem`.
const HOLDERS: [&str; 4] = ["file", "path", "dir", "env"];

/// Whether a name suggests that its value is a secret. Leading dashes and surrounding quotes
/// are ignored.
pub fn is_sensitive(name: &str) -> bool {
    let name = name.trim_start_matches('-').trim_matches(['"', '\'']);
    if name.is_empty() || name.len() > 64 {
        return false;
    }
    let parts = parts(name);
    if parts.last().is_some_and(|p| HOLDERS.contains(&p.as_str())) {
        return false;
    }
    let lower = name.to_ascii_lowercase();
    ANYWHERE.iter().any(|w| lower.contains(w)) || parts.iter().any(|p| PARTS.contains(&p.as_str()))
}

/// Lowercase parts of a name, split at separators and at lower-to-upper case changes.
fn parts(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        let split = !c.is_ascii_alphanumeric() || (prev_lower && c.is_ascii_uppercase());
        if split && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        if c.is_ascii_alphanumeric() {
            cur.push(c.to_ascii_lowercase());
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_names() {
        for n in [
            "--password",
            "DB_PASSWORD",
            "accessToken",
            "--api-key",
            "X-Auth-Token",
            "AWS_SECRET_ACCESS_KEY",
            "\"password\"",
            "client_secret",
            "GITHUB_TOKEN",
            "API_KEY",
            "SECRET",
            "--key",
        ] {
            assert!(is_sensitive(n), "{n}");
        }
    }

    #[test]
    fn ordinary_names() {
        for n in [
            "--author",
            "keyboard",
            "--tokenizer",
            "MODE",
            "--key-file",
            "-n",
            "--user",
            "",
            "PATH",
            "sort",
        ] {
            assert!(!is_sensitive(n), "{n}");
        }
    }
}
