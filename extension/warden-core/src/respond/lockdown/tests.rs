use super::*;
use crate::schema::{Class, Severity};
use crate::testing::finding_of;

fn finding(request_id: &str, indicators: &[Indicator]) -> Finding {
    let mut f = finding_of(Class::CommandInjection, Severity::High);
    f.request_id = Some(request_id.into());
    f.indicators = indicators.to_vec();
    f
}

fn known() -> Known {
    let mut k = Known::default();
    k.add_destination("10.0.0.5:443".parse().unwrap());
    k.add_program("/usr/bin/curl");
    k
}

fn page(dir: &tempfile::TempDir) -> LockdownPage {
    LockdownPage::create(dir.path(), "guard-test").unwrap()
}

#[test]
fn precursors_add_up_once_per_kind_and_invocation_then_the_page_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Lockdown::new(3, false, Some(page(&dir)));
    // The same precursor again in the same invocation (real time, then the record) counts
    // once; an attack's own indicators are not precursors.
    assert!(l
        .observe(
            &finding("r1", &[Indicator::ReconCommand, Indicator::ShellSpawned]),
            known
        )
        .is_none());
    assert!(l
        .observe(&finding("r1", &[Indicator::ReconCommand]), known)
        .is_none());
    assert_eq!(l.risk(), 1);
    assert!(l
        .observe(&finding("r2", &[Indicator::CredentialAccess]), known)
        .is_none());
    let locked = l
        .observe(&finding("r3", &[Indicator::PolicyViolation]), known)
        .expect("the third precursor locks down");
    assert_eq!(locked.action, Action::Lockdown);
    assert_eq!(locked.outcome, ActionOutcome::Taken);
    assert!(
        locked.reason.starts_with(
            "risk 3 of 3 (recon_command in r1, credential_access in r2, policy_violation in r3)"
        ),
        "{}",
        locked.reason
    );
    // The guard's view: the flag is set and the table names what is known.
    let bytes = std::fs::read(dir.path().join(".guard-test.lockdown")).unwrap();
    let table = warden_policy::lockdown::Table::read(&bytes).unwrap();
    assert!(table.knows_program(&[b"curl"]));
    assert!(!table.knows_program(&[b"sh"]));
    assert_eq!(u64::from_le_bytes(bytes[8..16].try_into().unwrap()), LOCKED);
    // Once locked down, nothing more is said.
    assert!(l
        .observe(&finding("r4", &[Indicator::Tamper]), known)
        .is_none());
}

#[test]
fn a_dry_run_decides_and_leaves_the_page_open() {
    let dir = tempfile::tempdir().unwrap();
    let page = page(&dir);
    let path = page.path().to_path_buf();
    let mut l = Lockdown::new(1, true, Some(page));
    let r = l
        .observe(&finding("r1", &[Indicator::ErrorBurst]), known)
        .expect("decided");
    assert_eq!(r.outcome, ActionOutcome::DryRun);
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(u64::from_le_bytes(bytes[8..16].try_into().unwrap()), 0);
}

#[test]
fn without_a_page_the_lockdown_is_recorded_as_failed() {
    let mut l = Lockdown::new(1, false, None);
    let r = l
        .observe(&finding("r1", &[Indicator::Tamper]), known)
        .expect("decided");
    assert_eq!(r.outcome, ActionOutcome::Failed);
}

#[test]
fn a_planted_file_or_link_is_replaced_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("victim");
    std::fs::write(&target, b"keep").unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join(".guard-test.lockdown")).unwrap();
    let page = page(&dir);
    assert!(!page.is_locked());
    assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    assert!(!std::fs::symlink_metadata(page.path())
        .unwrap()
        .file_type()
        .is_symlink());
}
