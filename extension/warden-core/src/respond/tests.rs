use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::procs::{targets, NotTarget, Platform, ProcTable, Protected, Tree};
use super::recycle::{exit_request, inside, Plan};
use super::*;
use crate::config::{parse_policy, Config};
use crate::schema::ActionRecord;
use crate::schema::Class;
use crate::schema::{ActionOutcome, ActionTarget};
use crate::schema::{BaselineView, Severity};

/// A fake tree: 1 init; 10 Warden; 11 runtime; 12 another extension (all started by init
/// at tick 100); 20 a shell the runtime started, 21 and 22 its children, 23 a grandchild;
/// 30 a daemon re-parented to init after the first INVOKE.
fn fake() -> ProcTable {
    ProcTable::from_entries(&[
        (1, 0, 1),
        (10, 1, 100),
        (11, 1, 100),
        (12, 1, 100),
        (20, 11, 500),
        (21, 20, 501),
        (22, 20, 502),
        (23, 21, 503),
        (30, 1, 600),
    ])
}

fn captured() -> Platform {
    let p = Platform::default();
    // At the first INVOKE only init's first children existed.
    let at_invoke = ProcTable::from_entries(&[(1, 0, 1), (10, 1, 100), (11, 1, 100), (12, 1, 100)]);
    p.capture(&at_invoke, 10);
    p
}

#[test]
fn never_warden_the_runtime_the_extensions_or_init() {
    let table = fake();
    let protected = Protected::new(&table, 10, &captured());
    for pid in [1, 10, 11, 12] {
        assert!(protected.contains(pid), "{pid} must be protected");
    }
    for pid in [20, 21, 22, 23, 30] {
        assert!(!protected.contains(pid), "{pid} is not the platform's");
    }
    let picked = targets(&table, &protected, &[11, 10, 1, 12], None);
    assert!(picked
        .iter()
        .all(|t| matches!(t, Err((_, NotTarget::Protected)))));
}

#[test]
fn before_the_first_invoke_every_sibling_is_protected() {
    let table = fake();
    let protected = Protected::new(&table, 10, &Platform::default());
    assert!(protected.contains(30) && protected.contains(11));
}

#[test]
fn a_target_takes_its_descendants_with_it() {
    let table = fake();
    let protected = Protected::new(&table, 10, &captured());
    let picked = targets(&table, &protected, &[20, 21, 30], None);
    let first = picked[0].clone().expect("the shell is a target");
    assert_eq!(first.root, 20);
    assert_eq!(sorted(first.descendants), vec![21, 22, 23]);
    assert_eq!(picked[1], Err((21, NotTarget::Covered)));
    assert_eq!(
        picked[2],
        Ok(Tree {
            root: 30,
            descendants: vec![]
        })
    );
}

fn sorted(mut v: Vec<u32>) -> Vec<u32> {
    v.sort_unstable();
    v
}

#[test]
fn gone_and_reused_pids_are_not_targets() {
    let table = fake();
    let protected = Protected::new(&table, 10, &captured());
    let picked = targets(&table, &protected, &[99, 30], Some(550));
    assert_eq!(picked[0], Err((99, NotTarget::Gone)));
    assert_eq!(picked[1], Err((30, NotTarget::Reused)));
}

#[test]
fn a_replaced_platform_pid_is_not_protected() {
    // The runtime's pid 11 now belongs to a process started later.
    let table = ProcTable::from_entries(&[(1, 0, 1), (10, 1, 100), (11, 1, 700)]);
    let protected = Protected::new(&table, 10, &captured());
    assert!(!protected.contains(11));
}

#[test]
fn paths_outside_the_scratch_dir_are_refused() {
    let tmp = Path::new("/tmp");
    assert!(inside(Path::new("/tmp/.x"), tmp));
    assert!(inside(Path::new("/tmp/a/b"), tmp));
    assert!(!inside(Path::new("/tmp"), tmp));
    assert!(!inside(Path::new("/tmp/../etc/passwd"), tmp));
    assert!(!inside(Path::new("/var/task/x"), tmp));
}

#[test]
fn the_exit_request_names_the_error_type() {
    let r = exit_request("127.0.0.1:9001", "ext-1", "why").expect("builds");
    assert_eq!(
        r.uri().to_string(),
        "http://127.0.0.1:9001/2020-01-01/extension/exit/error"
    );
    assert_eq!(r.headers()["Lambda-Extension-Identifier"], "ext-1");
    assert_eq!(
        r.headers()["Lambda-Extension-Function-Error-Type"],
        "Extension.WardenRecycle"
    );
}

// --- the responder on real processes ---

struct Kids(Vec<Child>);

impl Drop for Kids {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `sh -c 'sleep 30 & sleep 30 & wait'`: a shell with two children.
fn shell_tree() -> (Kids, u32) {
    let child = Command::new("sh")
        .args(["-c", "sleep 30 & sleep 30 & wait"])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawning sh");
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(5);
    while ProcTable::read(Path::new("/proc")).descendants(pid).len() < 2 {
        assert!(Instant::now() < deadline, "sh never started its children");
        std::thread::sleep(Duration::from_millis(10));
    }
    (Kids(vec![child]), pid)
}

fn config(policy: &str, dry_run: bool) -> Config {
    let mut c = Config::default();
    c.outputs.response = parse_policy(policy).expect("policy");
    c.outputs.dry_run = dry_run;
    c.lambda.function_name = "fn".into();
    c
}

fn finding(severity: Severity, evidence: Vec<Observation>) -> Finding {
    Finding {
        warden_finding: 1,
        id: "wf-1".into(),
        time_unix_ms: unix_ms(),
        request_id: Some("r1".into()),
        function_name: "fn".into(),
        function_version: "$LATEST".into(),
        class: Class::CommandInjection,
        severity,
        score: 0.9,
        realtime: true,
        indicators: vec![],
        explanation: vec![],
        evidence: evidence.clone(),
        raw_evidence: evidence,
        model: None,
        baseline: BaselineView {
            warmed_up: false,
            learned: 0,
        },
        related: vec![],
        earlier_requests: vec![],
        actions: vec![],
        feature_schema: 1,
        vector_version: 1,
    }
}

fn process(pid: u32) -> Observation {
    Observation::Process {
        pid,
        ppid: std::process::id(),
        exe: "/bin/sh".into(),
        cmdline: "sh -c ...".into(),
        exec: false,
        alive_at_end: false,
        stdio_socket: false,
        runtime_fork: false,
    }
}

/// A responder whose "platform" is captured with the test process as Warden: the shell,
/// a child of the test process, is not one of its siblings.
fn responder(policy: &str, dry_run: bool, health: &Arc<Health>) -> Responder {
    let shared = Shared::default();
    shared
        .platform
        .capture(&ProcTable::default(), std::process::id());
    Responder::from_config(&config(policy, dry_run), health.clone(), &shared).expect("a policy")
}

fn alive(pid: u32) -> bool {
    // A killed child stays a zombie until reaped: read its state.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|r| r.trim_start().starts_with(|c| c != 'Z'))
        })
        .unwrap_or(false)
}

#[test]
fn no_policy_no_responder() {
    let health = Arc::new(Health::default());
    assert!(Responder::from_config(&config("none", false), health, &Shared::default()).is_none());
}

#[test]
fn kill_takes_down_the_shell_and_its_children() {
    let (_kids, pid) = shell_tree();
    let children = ProcTable::read(Path::new("/proc")).descendants(pid);
    let health = Arc::new(Health::default());
    let mut r = responder("high=kill", false, &health);
    let mut f = finding(Severity::Critical, vec![process(pid)]);
    r.respond(&mut f);
    assert_eq!(f.actions.len(), 1, "{:?}", f.actions);
    let a = &f.actions[0];
    assert_eq!(
        (a.action, a.outcome),
        (Action::Kill, ActionOutcome::Taken),
        "{a:?}"
    );
    match &a.target {
        Some(ActionTarget::Process {
            pid: p,
            exe,
            descendants,
        }) => {
            assert_eq!((*p, exe.as_str()), (pid, "/bin/sh"));
            assert_eq!(sorted(descendants.clone()), sorted(children.clone()));
        }
        other => panic!("target {other:?}"),
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(!alive(pid), "the shell survived");
    for c in children {
        assert!(!alive(c), "child {c} survived");
    }
    assert_eq!(health.get(Counter::ResponseKill), 1);
    assert_eq!(health.get(Counter::ResponsesTaken), 1);
    let json = serde_json::to_value(a).expect("serialises");
    assert_eq!(json["action"], "kill");
    assert_eq!(json["outcome"], "taken");
    assert_eq!(json["target"]["pid"], pid);
    assert!(json["time_unix_ms"].as_u64().is_some());
}

#[test]
fn dry_run_decides_and_records_but_kills_nothing() {
    let (_kids, pid) = shell_tree();
    let health = Arc::new(Health::default());
    let mut r = responder("high=kill+recycle+throttle", true, &health);
    let mut f = finding(Severity::High, vec![process(pid)]);
    r.respond(&mut f);
    let got: Vec<(Action, ActionOutcome)> =
        f.actions.iter().map(|a| (a.action, a.outcome)).collect();
    assert_eq!(
        got,
        vec![
            (Action::Kill, ActionOutcome::DryRun),
            (Action::Recycle, ActionOutcome::DryRun),
            (Action::Throttle, ActionOutcome::DryRun)
        ]
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(alive(pid), "dry run killed the shell");
    assert!(!r.shared.gate.pending(), "dry run scheduled a recycle");
    assert_eq!(health.get(Counter::ResponsesDryRun), 3);
    assert_eq!(health.get(Counter::ResponsesTaken), 0);
    assert_eq!(health.response_actions()[4], ("dry_run", 3));
}

#[test]
fn below_the_policy_nothing_is_considered() {
    let (_kids, pid) = shell_tree();
    let health = Arc::new(Health::default());
    let mut r = responder("critical=kill", false, &health);
    let mut f = finding(Severity::High, vec![process(pid)]);
    r.respond(&mut f);
    assert!(f.actions.is_empty());
    assert!(alive(pid));
}

#[test]
fn kill_never_touches_warden_and_says_why() {
    let health = Arc::new(Health::default());
    let mut r = responder("low=kill", false, &health);
    let me = std::process::id();
    let mut f = finding(Severity::Low, vec![process(me), process(1)]);
    r.respond(&mut f);
    let a = &f.actions[0];
    assert_eq!(a.outcome, ActionOutcome::Skipped, "{a:?}");
    assert!(a.target.is_none());
    assert!(a.reason.contains("never killed"), "{}", a.reason);
    let mut f = finding(Severity::Low, vec![]);
    r.respond(&mut f);
    assert_eq!(f.actions[0].reason, "no process in the evidence");
    assert_eq!(health.get(Counter::ResponsesSkipped), 2);
}

#[test]
fn recycle_plans_files_under_the_scratch_dir_and_processes() {
    let health = Arc::new(Health::default());
    let mut r = responder("high=recycle", false, &health);
    let tmp_file = |path: &str, action| Observation::TmpFile {
        path: path.into(),
        action,
        size: None,
    };
    let mut f = finding(
        Severity::High,
        vec![
            tmp_file("/tmp/.x", TmpAction::Created),
            tmp_file("/tmp/gone", TmpAction::Deleted),
            tmp_file("/etc/passwd", TmpAction::Written),
            process(4242),
            Observation::Process {
                pid: 4243,
                ppid: 4242,
                exe: "/bin/sh".into(),
                cmdline: "/bin/sh /tmp/.run.sh".into(),
                exec: true,
                alive_at_end: false,
                stdio_socket: false,
                runtime_fork: false,
            },
            Observation::Program {
                exe: "/tmp/.bin/miner".into(),
            },
            Observation::Program {
                exe: "/usr/bin/id".into(),
            },
        ],
    );
    r.respond(&mut f);
    let a = &f.actions[0];
    assert_eq!(
        (a.action, a.outcome),
        (Action::Recycle, ActionOutcome::Taken)
    );
    assert_eq!(
        a.target,
        Some(ActionTarget::Environment {
            files: vec![
                "/tmp/.bin/miner".into(),
                "/tmp/.run.sh".into(),
                "/tmp/.x".into()
            ],
            pids: vec![4242, 4243]
        })
    );
    let plan = r.shared.gate.take().expect("a pending plan");
    assert!(plan.files.contains(&PathBuf::from("/tmp/.x")));
    assert_eq!(plan.findings, vec!["wf-1".to_string()]);
}

#[test]
fn recycle_plans_from_raw_evidence_and_writes_redacted_paths() {
    let health = Arc::new(Health::default());
    let mut r = responder("high=recycle", false, &health);
    // 40 mixed characters: redaction takes the name for a key.
    let payload = "/tmp/Xk3vQ9mZr7TbW2nLp8YcF4hJs6DgA1eRu5oK";
    let raw = vec![
        Observation::TmpFile {
            path: payload.into(),
            action: TmpAction::Created,
            size: None,
        },
        Observation::Program {
            exe: payload.into(),
        },
    ];
    let mut f = finding(Severity::High, raw.clone());
    f.evidence = raw.iter().map(|o| redact::observation(o).0).collect();
    r.respond(&mut f);
    let plan = r.shared.gate.take().expect("a pending plan");
    assert_eq!(
        plan.files.into_iter().collect::<Vec<_>>(),
        vec![PathBuf::from(payload)]
    );
    let Some(ActionTarget::Environment { files, .. }) = &f.actions[0].target else {
        panic!("{:?}", f.actions);
    };
    assert_eq!(files, &vec!["/tmp/[REDACTED]".to_string()]);
}

#[test]
fn recycle_clean_up_removes_files_and_kills_leftovers() {
    let dir = tempfile_dir();
    let dropped = dir.join(".x");
    std::fs::write(&dropped, b"payload").expect("writing");
    let outside = std::env::temp_dir().join(format!("warden-outside-{}", std::process::id()));
    std::fs::write(&outside, b"keep").expect("writing");
    let (_kids, pid) = shell_tree();
    let platform = Platform::default();
    platform.capture(&ProcTable::default(), std::process::id());
    let plan = Plan {
        files: [dropped.clone(), outside.clone()].into_iter().collect(),
        pids: [pid].into_iter().collect(),
        findings: vec!["wf-1".into()],
    };
    let c = super::recycle::clean(&plan, &dir, Path::new("/proc"), &platform);
    assert_eq!(c.removed, vec![dropped.clone()]);
    assert!(!dropped.exists());
    assert!(
        outside.exists(),
        "a file outside the scratch dir was removed"
    );
    assert!(c.killed.contains(&pid), "{c:?}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(!alive(pid));
    let _ = std::fs::remove_file(outside);
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "warden-respond-{}-{}",
        std::process::id(),
        unix_ms()
    ));
    std::fs::create_dir_all(&d).expect("creating a scratch dir");
    d
}

#[test]
fn throttle_without_aws_fails_and_is_rate_limited_with_it() {
    let health = Arc::new(Health::default());
    let mut r = responder("critical=throttle", false, &health);
    let mut f = finding(Severity::Critical, vec![]);
    r.respond(&mut f);
    assert_eq!(f.actions[0].outcome, ActionOutcome::Failed);
    assert!(
        f.actions[0].reason.contains("credentials"),
        "{:?}",
        f.actions[0]
    );

    let mut t = Throttle::new(
        "fn",
        Duration::from_secs(300),
        crate::config::AwsEnv {
            region: Some("us-east-1".into()),
            access_key_id: Some("testing".into()),
            secret_access_key: crate::config::Secret("testing".into()),
            session_token: None,
            endpoint_url: Some("http://127.0.0.1:9".into()),
        },
        health,
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let now = Instant::now();
    rt.block_on(async {
        assert_eq!(t.issue(now), Ok(()));
        assert!(matches!(
            t.issue(now + Duration::from_secs(10)),
            Err(throttle::ThrottleError::TooSoon(10, 300))
        ));
        assert_eq!(t.check(now + Duration::from_secs(301)), Ok(()));
    });
}

#[test]
fn audit_entries_read_back_as_written() {
    let entries = vec![
        record(
            Action::Kill,
            Some(ActionTarget::Process {
                pid: 7,
                exe: "/bin/sh".into(),
                descendants: vec![8],
            }),
            ActionOutcome::Taken,
            "SIGKILL sent to 2 process(es)",
            1,
        ),
        record(
            Action::Recycle,
            Some(ActionTarget::Environment {
                files: vec!["/tmp/.x".into()],
                pids: vec![],
            }),
            ActionOutcome::DryRun,
            "dry run",
            2,
        ),
        record(
            Action::Throttle,
            Some(ActionTarget::Function {
                function_name: "fn".into(),
            }),
            ActionOutcome::Failed,
            "no AWS",
            3,
        ),
        record(Action::Kill, None, ActionOutcome::Skipped, "none", 4),
    ];
    let json = serde_json::to_string(&entries).expect("serialises");
    assert!(
        json.contains(r#""target":{"pid":7,"exe":"/bin/sh","descendants":[8]}"#),
        "{json}"
    );
    assert!(json.contains(r#""outcome":"dry_run""#), "{json}");
    let back: Vec<ActionRecord> = serde_json::from_str(&json).expect("parses");
    assert_eq!(back, entries);
}

#[test]
fn the_template_policies_parse() {
    // sam-template.yaml, Mappings/ResponsePolicy.
    for (policy, high, critical) in [
        ("high=kill", vec![Action::Kill], vec![Action::Kill]),
        (
            "high=kill+recycle",
            vec![Action::Kill, Action::Recycle],
            vec![Action::Kill, Action::Recycle],
        ),
        (
            "high=kill+recycle,critical=throttle",
            vec![Action::Kill, Action::Recycle],
            vec![Action::Kill, Action::Recycle, Action::Throttle],
        ),
    ] {
        let p = parse_policy(policy).expect(policy);
        assert_eq!(p.actions_for(Severity::High), high, "{policy}");
        assert_eq!(p.actions_for(Severity::Critical), critical, "{policy}");
        assert!(p.actions_for(Severity::Medium).is_empty(), "{policy}");
    }
    assert!(parse_policy("none").expect("none").rules.is_empty());
}
