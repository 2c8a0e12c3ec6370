//! sam-template.yaml: cfn-lint (with the SAM transform) passes, and the dashboard and alarms
//! plot only metrics of the contract in docs/metrics.md.

use std::process::Command;

use warden_sandbox::harness::{python, repo_root};

fn venv_tool(name: &str) -> std::path::PathBuf {
    let path = python().with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup",
        path.display()
    );
    path
}

#[test]
fn template_passes_cfn_lint() {
    let out = Command::new(venv_tool("cfn-lint"))
        .arg(repo_root().join("sam-template.yaml"))
        .output()
        .expect("running cfn-lint");
    assert!(
        out.status.success(),
        "cfn-lint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn dashboard_and_alarms_use_only_contract_metrics() {
    let out = Command::new(python())
        .arg(repo_root().join("tests/template/check_template.py"))
        .arg(repo_root())
        .output()
        .expect("running the template check");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
