//! The lifecycle engine: init, invoke, freeze/thaw, reset and shutdown of one execution
//! environment, as Lambda runs them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::clock;
use crate::config::RuntimeKind;
use crate::environment::Layout;
use crate::freezer::Freezer;
use crate::procs::{self, Cgroup, LineSink, Spec};
use crate::report::Invocation;
use crate::state::{Outcome, PendingInvoke, Shared};

const INIT_LIMIT: Duration = Duration::from_secs(10);
const SHUTDOWN_LIMIT: Duration = Duration::from_millis(2_000);
const RUNTIME_SIGTERM_GRACE: Duration = Duration::from_millis(300);
const LOG_DRAIN_LIMIT: Duration = Duration::from_millis(300);
/// How long a torn-down environment's processes may take to be gone. A new environment on
/// Lambda shares nothing with the old one, so the next init waits for all of them: on a loaded
/// host a reaper can lag well behind the SIGKILL.
const TEARDOWN_LIMIT: Duration = Duration::from_secs(5);

#[derive(Clone, PartialEq, Eq)]
enum Role {
    Extension(String),
    Runtime,
}

/// Why an environment is torn down.
#[derive(Clone, Copy)]
enum Reason {
    Spindown,
    Timeout,
    Failure,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Spindown => "spindown",
            Reason::Timeout => "timeout",
            Reason::Failure => "failure",
        }
    }
}

/// A failed init: the invocation that needed it fails with this error type.
struct InitFailure {
    error_type: String,
    message: String,
}

pub struct Engine {
    shared: Arc<Shared>,
    layout: Layout,
    env: Vec<(String, String)>,
    frozen: watch::Sender<bool>,
    cgroup: Option<Cgroup>,
    /// Freezes without signals where the machine allows it (see `freezer`).
    freezer: Option<Freezer>,
    roles: Arc<Mutex<HashMap<u32, Role>>>,
    initialized: bool,
    runtime_output: procs::Output,
}

impl Engine {
    pub fn new(shared: Arc<Shared>, layout: Layout, frozen: watch::Sender<bool>) -> Engine {
        let env = crate::environment::lambda_env(&shared.config, &layout);
        let isolated = layout_is_isolated(&layout);
        let cgroup = if isolated {
            Cgroup::create(shared.config.memory_mb)
        } else {
            None
        };
        let freezer = if isolated { Freezer::create() } else { None };
        if isolated && freezer.is_none() {
            eprintln!("[sandbox] no cgroup v2 freezer here: freezing with SIGSTOP/SIGCONT");
        }
        Engine {
            shared,
            layout,
            env,
            frozen,
            cgroup,
            freezer,
            roles: Arc::default(),
            initialized: false,
            runtime_output: procs::Output::default(),
        }
    }

    /// Follows process exits reported by the reaper.
    pub fn watch_exits(
        &self,
        mut exits: tokio::sync::mpsc::UnboundedReceiver<(u32, std::process::ExitStatus)>,
    ) {
        let shared = self.shared.clone();
        let roles = self.roles.clone();
        tokio::spawn(async move {
            while let Some((pid, _status)) = exits.recv().await {
                // The roles stay locked until the state says who exited: a teardown clears
                // the roles before the next init resets the state, so an exit is never
                // filed against the next environment's process of the same role.
                let mut roles = roles.lock().unwrap_or_else(|e| e.into_inner());
                let role = roles.remove(&pid);
                let mut state = shared.lock();
                match role {
                    Some(Role::Runtime) => state.runtime.exited = true,
                    Some(Role::Extension(name)) => {
                        if let Some(ext) = state.extensions.iter_mut().find(|e| e.name == name) {
                            ext.exited = true;
                        }
                        state.dead_launches.push(name);
                    }
                    None => continue,
                }
                drop(state);
                drop(roles);
                shared.changed();
            }
        });
    }

    /// Runs one invocation end to end, initialising the environment first when needed.
    pub async fn invoke(&mut self, payload: Bytes) -> Invocation {
        let started = Instant::now();
        let cold = !self.initialized;
        let mut init_ms = None;
        let mut ready = Vec::new();
        if cold {
            if let Some(cg) = &self.cgroup {
                cg.reset_peak();
            }
            match self.init().await {
                Ok((ms, r)) => {
                    init_ms = Some(ms);
                    ready = r;
                }
                Err(failure) => {
                    self.reset(Reason::Failure).await;
                    return Invocation::init_failed(
                        failure.error_type,
                        failure.message,
                        ms_since(started),
                        ready,
                    );
                }
            }
        } else {
            self.thaw();
            let _ = self.frozen.send(false);
        }

        let request_id = uuid::Uuid::new_v4().to_string();
        let timeout = Duration::from_secs(self.shared.config.timeout_s);
        let deadline = Instant::now() + timeout;
        let invoke_start = Instant::now();
        let deadline_ms = clock::epoch_ms() + timeout.as_millis() as u64;
        let trace_id = format!(
            "Root=1-{:08x}-{}",
            clock::epoch_ms() / 1000,
            &uuid::Uuid::new_v4().simple().to_string()[..24]
        );
        // platform.start goes out before the runtime can run: a handler that prints at once
        // must find its invocation already started in the telemetry stream, as on Lambda.
        self.shared.telemetry.emit(
            "platform.start",
            json!({"requestId": request_id, "version": "$LATEST", "tracing": {"type": "X-Amzn-Trace-Id", "value": trace_id}}),
        );
        self.dispatch(&request_id, deadline_ms, &trace_id, payload);

        let responded = self
            .shared
            .wait_until(deadline, |s| {
                s.runtime.outcome.is_some()
                    || s.runtime.exited
                    || s.extensions.iter().any(|e| e.exited || e.error.is_some())
            })
            .await;
        let runtime_done = self
            .shared
            .lock()
            .runtime
            .outcome
            .as_ref()
            .map(|(_, at)| *at)
            .unwrap_or_else(Instant::now);
        // What the function printed during the invoke is published before its runtimeDone.
        self.runtime_output.drain(LOG_DRAIN_LIMIT);
        let mut inv = Invocation::new(request_id.clone(), cold, init_ms, ready);
        let (status, produced) = self.runtime_status(responded, &mut inv);
        let duration_ms = ms_between(invoke_start, runtime_done);
        let mut rt_done = json!({
            "requestId": request_id,
            "status": status,
            "metrics": {"durationMs": duration_ms, "producedBytes": produced},
            "spans": [
                {"name": "responseLatency", "start": clock::rfc3339_now(), "durationMs": duration_ms},
                {"name": "responseDuration", "start": clock::rfc3339_now(), "durationMs": 0.0}
            ]
        });
        if let Some(t) = &inv.error_type() {
            rt_done["errorType"] = json!(t);
        }
        self.shared.telemetry.emit("platform.runtimeDone", rt_done);
        inv.latency_ms = ms_between(started, runtime_done);
        inv.produced_bytes = produced;

        // The invocation ends when every extension that takes INVOKE is back in /next.
        if inv.status == "success" || inv.status == "error" {
            let done = self
                .shared
                .wait_until(deadline, |s| {
                    s.extensions
                        .iter()
                        .all(|e| !e.wants("INVOKE") || e.waiting || e.exited || e.error.is_some())
                })
                .await;
            let crashed = self
                .shared
                .lock()
                .extensions
                .iter()
                .any(|e| e.exited || e.error.is_some());
            if crashed {
                // The runtime had answered: as on Lambda, the caller already has the response;
                // the extension's failure ends the environment, not the answer.
                let response = inv.response.take();
                inv.fail(
                    "crash",
                    "Extension.Crash",
                    "an extension crashed or reported an error during the invoke",
                );
                inv.response = response;
            } else if !done {
                inv.fail(
                    "timeout",
                    "Sandbox.Timedout",
                    &format!("Task timed out after {:.2} seconds", timeout.as_secs_f64()),
                );
            }
        }
        // Post-runtime time is the extensions' own: from runtimeDone to the last of them back in
        // /event/next (the sandbox's own bookkeeping after that is not theirs).
        let last_next = self
            .shared
            .lock()
            .extensions
            .iter()
            .filter(|e| e.wants("INVOKE"))
            .filter_map(|e| e.waiting_since)
            .max();
        let finished = match last_next {
            Some(at) if at > runtime_done && inv.status != "timeout" => at,
            _ if inv.status == "timeout" => Instant::now(),
            _ => runtime_done,
        };
        inv.post_runtime_ms = ms_between(runtime_done, finished);
        inv.duration_ms = ms_between(invoke_start, finished);
        inv.billed_ms = inv.duration_ms.ceil() as u64;
        inv.memory_mb = self.shared.config.memory_mb;
        inv.max_memory_mb = self.max_memory_mb();
        self.emit_report(&inv);

        match inv.status.as_str() {
            "success" | "error" => self.freeze(),
            "timeout" => self.reset(Reason::Timeout).await,
            _ => self.reset(Reason::Failure).await,
        }
        inv
    }

    /// Hands the invocation to the extensions, then to the runtime (extensions first, so the
    /// sandbox adds no bias of its own against an extension's view of the invocation's start).
    fn dispatch(&self, request_id: &str, deadline_ms: u64, trace_id: &str, payload: Bytes) {
        let event = json!({
            "eventType": "INVOKE",
            "deadlineMs": deadline_ms,
            "requestId": request_id,
            "invokedFunctionArn": self.shared.function_arn,
            "tracing": {"type": "X-Amzn-Trace-Id", "value": trace_id},
        });
        let mut state = self.shared.lock();
        for ext in state.extensions.iter_mut().filter(|e| e.wants("INVOKE")) {
            ext.queue.push_back(event.clone());
            ext.waiting = false;
            ext.wake.notify_one();
        }
        state.runtime.outcome = None;
        state.runtime.current = None;
        state.runtime.pending = Some(PendingInvoke {
            request_id: request_id.to_string(),
            deadline_ms,
            payload,
            trace_id: trace_id.to_string(),
        });
        state.runtime.wake.notify_one();
        drop(state);
        self.shared.changed();
    }

    /// Reads how the runtime ended the invocation; returns the runtimeDone status and the
    /// response size.
    fn runtime_status(&self, responded: bool, inv: &mut Invocation) -> (&'static str, usize) {
        let state = self.shared.lock();
        match &state.runtime.outcome {
            Some((Outcome::Response { body }, _)) => {
                inv.response = Some(
                    serde_json::from_slice(body)
                        .unwrap_or_else(|_| json!(String::from_utf8_lossy(body))),
                );
                inv.status = "success".into();
                ("success", body.len())
            }
            Some((Outcome::Error { error_type, body }, _)) => {
                inv.error = Some(body.clone());
                inv.set_error_type(error_type);
                inv.status = "error".into();
                ("error", 0)
            }
            None if state.runtime.exited => {
                drop(state);
                inv.fail(
                    "crash",
                    "Runtime.ExitError",
                    "Runtime exited without providing a reason",
                );
                ("failure", 0)
            }
            None if responded => {
                drop(state);
                inv.fail(
                    "crash",
                    "Extension.Crash",
                    "an extension crashed or reported an error during the invoke",
                );
                ("failure", 0)
            }
            None => {
                let secs = self.shared.config.timeout_s;
                drop(state);
                inv.fail(
                    "timeout",
                    "Sandbox.Timedout",
                    &format!("Task timed out after {secs}.00 seconds"),
                );
                ("timeout", 0)
            }
        }
    }

    fn emit_report(&self, inv: &Invocation) {
        let mut metrics = json!({
            "durationMs": inv.duration_ms,
            "billedDurationMs": inv.billed_ms,
            "memorySizeMB": inv.memory_mb,
            "maxMemoryUsedMB": inv.max_memory_mb,
        });
        if let Some(init) = inv.init_ms {
            metrics["initDurationMs"] = json!(init);
        }
        let mut record = json!({
            "requestId": inv.request_id,
            "status": report_status(&inv.status),
            "metrics": metrics,
        });
        if let Some(t) = inv.error_type() {
            record["errorType"] = json!(t);
        }
        self.shared.telemetry.emit("platform.report", record);
    }

    fn max_memory_mb(&self) -> u64 {
        // The cgroup misses pages its processes share with the host (libraries already cached),
        // so the larger of its peak and the summed RSS is closer to what Lambda reports.
        let peak = self
            .cgroup
            .as_ref()
            .and_then(Cgroup::peak_bytes)
            .unwrap_or(0);
        let bytes = peak.max(procs::rss_bytes());
        bytes.div_ceil(1024 * 1024)
    }

    fn freeze(&self) {
        let _ = self.frozen.send(true);
        match &self.freezer {
            Some(f) => f.freeze(),
            None => {
                procs::freeze();
            }
        }
    }

    fn thaw(&self) {
        match &self.freezer {
            Some(f) => f.thaw(),
            None => {
                procs::thaw();
            }
        }
    }

    /// The init phase: extensions start and register, then the runtime starts; init ends when
    /// the runtime and every extension wait in /next.
    async fn init(&mut self) -> Result<(f64, Vec<(String, f64)>), InitFailure> {
        let started = Instant::now();
        let deadline = started + INIT_LIMIT;
        {
            let mut state = self.shared.lock();
            *state = Default::default();
            state.registering = true;
        }
        self.shared.telemetry.begin_init();
        self.shared.telemetry.emit(
            "platform.initStart",
            json!({
                "initializationType": "on-demand",
                "phase": "init",
                "runtimeVersion": runtime_version(self.shared.config.runtime),
                "runtimeVersionArn": format!("arn:aws:lambda:{}::runtime:warden-sandbox", crate::state::region(&self.shared.config)),
                "functionName": self.shared.config.function_name,
                "functionVersion": "$LATEST",
            }),
        );
        let extensions = self.shared.config.extensions.clone();
        for (name, _) in &extensions {
            let program = self.layout.opt.join("extensions").join(name);
            self.start(&program, &[], Role::Extension(name.clone()), "extension")
                .map_err(|e| InitFailure {
                    error_type: "Extension.LaunchError".into(),
                    message: e.to_string(),
                })?;
        }
        let count = extensions.len();
        let registered = self
            .shared
            .wait_until(deadline, |s| {
                s.extensions.len() >= count || !s.dead_launches.is_empty()
            })
            .await;
        if !registered || self.shared.lock().extensions.len() < count {
            return Err(self.init_error(
                registered,
                "Extension.Crash",
                "an extension exited or did not register during init",
            ));
        }
        self.shared.lock().registering = false;

        let (program, args) = self.runtime_command();
        let runtime = self
            .start(&program, &args, Role::Runtime, "function")
            .map_err(|e| InitFailure {
                error_type: "Runtime.InvalidEntrypoint".into(),
                message: e.to_string(),
            })?;
        self.shared.lock().runtime.pid = Some(runtime.pid);
        self.runtime_output = runtime.output;
        let ready = self
            .shared
            .wait_until(deadline, |s| {
                let failed = s.runtime.exited
                    || s.runtime.init_error.is_some()
                    || s.extensions.iter().any(|e| e.exited || e.error.is_some());
                failed || (s.runtime.waiting && s.extensions.iter().all(|e| e.ready_at.is_some()))
            })
            .await;
        let duration_ms = ms_since(started);
        // What the runtime printed while initialising belongs before the init phase's end.
        self.runtime_output.drain(LOG_DRAIN_LIMIT);
        let failure = self.init_outcome(ready);
        let status = if failure.is_some() {
            "error"
        } else {
            "success"
        };
        let mut done = json!({"initializationType": "on-demand", "phase": "init", "status": status, "spans": []});
        let mut report = json!({"initializationType": "on-demand", "phase": "init", "status": status, "metrics": {"durationMs": duration_ms}, "spans": []});
        if let Some(f) = &failure {
            done["errorType"] = json!(f.error_type);
            report["errorType"] = json!(f.error_type);
        }
        self.shared.telemetry.emit("platform.initRuntimeDone", done);
        self.shared.telemetry.emit("platform.initReport", report);
        self.shared.telemetry.end_init();
        if let Some(f) = failure {
            return Err(f);
        }
        self.initialized = true;
        let ready_times = {
            let state = self.shared.lock();
            state
                .extensions
                .iter()
                .map(|e| {
                    (
                        e.name.clone(),
                        e.ready_at.map(|t| ms_between(started, t)).unwrap_or(0.0),
                    )
                })
                .collect()
        };
        Ok((duration_ms, ready_times))
    }

    fn init_outcome(&self, ready: bool) -> Option<InitFailure> {
        let state = self.shared.lock();
        if let Some((error_type, body)) = &state.runtime.init_error {
            let message = body["errorMessage"]
                .as_str()
                .unwrap_or("init error")
                .to_string();
            return Some(InitFailure {
                error_type: error_type.clone(),
                message,
            });
        }
        if state.runtime.exited {
            return Some(InitFailure {
                error_type: "Runtime.ExitError".into(),
                message: "Runtime exited during init".into(),
            });
        }
        if let Some(ext) = state
            .extensions
            .iter()
            .find(|e| e.exited || e.error.is_some())
        {
            return Some(InitFailure {
                error_type: ext
                    .error
                    .clone()
                    .unwrap_or_else(|| "Extension.Crash".into()),
                message: format!("extension {} failed during init", ext.name),
            });
        }
        if !ready {
            return Some(InitFailure {
                error_type: "Sandbox.Timedout".into(),
                message: format!("init did not finish within {} s", INIT_LIMIT.as_secs()),
            });
        }
        None
    }

    fn init_error(&self, in_time: bool, error_type: &str, message: &str) -> InitFailure {
        if in_time {
            InitFailure {
                error_type: error_type.into(),
                message: message.into(),
            }
        } else {
            InitFailure {
                error_type: "Extension.InitTimeout".into(),
                message: format!(
                    "extensions did not register within {} s",
                    INIT_LIMIT.as_secs()
                ),
            }
        }
    }

    /// The runtime's program and arguments. A managed runtime is started through
    /// `AWS_LAMBDA_EXEC_WRAPPER` when the function sets it, as Lambda does: the wrapper gets the
    /// runtime's command as its arguments. OS-only runtimes (`provided`) ignore the variable.
    fn runtime_command(&self) -> (PathBuf, Vec<String>) {
        match self.shared.config.runtime {
            RuntimeKind::Provided => (self.layout.task_root.join("bootstrap"), Vec::new()),
            RuntimeKind::Python => {
                let python = self.layout.python.clone();
                let args = vec![
                    "-m".into(),
                    "awslambdaric".into(),
                    self.shared.config.handler.clone(),
                ];
                match exec_wrapper(&self.env) {
                    Some(wrapper) => {
                        let mut wrapped = vec![python.to_string_lossy().into_owned()];
                        wrapped.extend(args);
                        (wrapper, wrapped)
                    }
                    None => (python, args),
                }
            }
        }
    }

    fn start(
        &self,
        program: &Path,
        args: &[String],
        role: Role,
        log_type: &'static str,
    ) -> Result<procs::Started, procs::SpawnError> {
        let telemetry = self.shared.telemetry.clone();
        let sink = move |to_stderr: bool| -> LineSink {
            let telemetry = telemetry.clone();
            let print = procs::passthrough(to_stderr);
            Arc::new(move |line: &str| {
                print(line);
                telemetry.emit(log_type, json!(line));
            })
        };
        let cwd = match role {
            Role::Runtime => self.layout.task_root.clone(),
            Role::Extension(_) => PathBuf::from("/"),
        };
        let started = procs::spawn(Spec {
            program,
            args,
            env: &self.env,
            cwd: &cwd,
            on_stdout: sink(false),
            on_stderr: sink(true),
            cgroup: self.freezer.as_ref().map(Freezer::fd),
        })?;
        self.roles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(started.pid, role);
        Ok(started)
    }

    /// Tears the environment down after a timeout or crash; the next invoke re-inits.
    async fn reset(&mut self, reason: Reason) {
        let _ = self.frozen.send(false);
        self.thaw();
        let runtime_pid = self.shared.lock().runtime.pid;
        if let Some(pid) = runtime_pid {
            procs::signal(pid, procs::Signal::KILL);
        }
        self.shutdown_extensions(reason, Instant::now() + SHUTDOWN_LIMIT)
            .await;
        self.finish();
    }

    /// SHUTDOWN at the end of the run: runtime gets SIGTERM, then extensions get SHUTDOWN and
    /// the rest of the 2 s; stragglers are killed.
    pub async fn shutdown(&mut self) {
        if !self.initialized {
            self.finish();
            return;
        }
        let deadline = Instant::now() + SHUTDOWN_LIMIT;
        let _ = self.frozen.send(false);
        self.thaw();
        let runtime_pid = self.shared.lock().runtime.pid;
        if let Some(pid) = runtime_pid {
            procs::signal(pid, procs::Signal::TERM);
            let grace = Instant::now() + RUNTIME_SIGTERM_GRACE;
            self.shared.wait_until(grace, |s| s.runtime.exited).await;
            procs::signal(pid, procs::Signal::KILL);
        }
        self.shutdown_extensions(Reason::Spindown, deadline).await;
        self.finish();
    }

    async fn shutdown_extensions(&self, reason: Reason, deadline: Instant) {
        // Late telemetry (the last report) goes out before the SHUTDOWN event, bounded.
        self.shared
            .telemetry
            .flush(Duration::from_millis(250))
            .await;
        let event = json!({
            "eventType": "SHUTDOWN",
            "shutdownReason": reason.as_str(),
            "deadlineMs": clock::epoch_ms() + deadline.saturating_duration_since(Instant::now()).as_millis() as u64,
        });
        {
            let mut state = self.shared.lock();
            for ext in state
                .extensions
                .iter_mut()
                .filter(|e| e.wants("SHUTDOWN") && !e.exited)
            {
                ext.queue.push_back(event.clone());
                ext.wake.notify_one();
            }
        }
        self.shared.changed();
        self.shared
            .wait_until(deadline, |s| {
                s.extensions.iter().all(|e| e.exited) && s.runtime.exited
            })
            .await;
    }

    fn finish(&mut self) {
        if !procs::kill_all(TEARDOWN_LIMIT) {
            eprintln!(
                "[sandbox] processes of the torn-down environment still there after {:?}: {:?}",
                TEARDOWN_LIMIT,
                procs::descendants()
            );
        }
        self.shared.telemetry.reset();
        self.roles.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.initialized = false;
    }
}

/// The function's `AWS_LAMBDA_EXEC_WRAPPER`, when set and not empty.
fn exec_wrapper(env: &[(String, String)]) -> Option<PathBuf> {
    env.iter()
        .rev()
        .find(|(name, _)| name == "AWS_LAMBDA_EXEC_WRAPPER")
        .filter(|(_, value)| !value.is_empty())
        .map(|(_, value)| PathBuf::from(value))
}

fn layout_is_isolated(layout: &Layout) -> bool {
    layout.task_root == Path::new("/var/task")
}

fn runtime_version(kind: RuntimeKind) -> &'static str {
    match kind {
        RuntimeKind::Python => "python:3.sandbox",
        RuntimeKind::Provided => "provided:al2023.sandbox",
    }
}

fn report_status(status: &str) -> &'static str {
    match status {
        "success" => "success",
        "timeout" => "timeout",
        "error" => "error",
        _ => "failure",
    }
}

fn ms_between(a: Instant, b: Instant) -> f64 {
    (b.saturating_duration_since(a).as_micros() as f64) / 1000.0
}

fn ms_since(a: Instant) -> f64 {
    ms_between(a, Instant::now())
}

pub fn parse_event(line: &str) -> Result<Bytes, String> {
    match serde_json::from_str::<Value>(line) {
        Ok(_) => Ok(Bytes::from(line.trim().to_string())),
        Err(e) => Err(format!("Could not parse request body into json: {e}")),
    }
}
