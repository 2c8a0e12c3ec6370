//! The Extensions API side: register, subscribe to telemetry, run the next-event loop.
//!
//! Taken from `lambda-extension`: registration (its `register()` hands back the extension
//! id, which is all the Telemetry subscription needs) and the event types. Owned here: the
//! `/event/next` loop on one kept-alive connection ([`crate::events_api`]: the crate's loop
//! costs a pooled hyper request per invocation), the telemetry listener and record types
//! (see [`warden_core::sources::telemetry`]) and the subscription request (schema 2022-12-13).
//!
//! The INVOKE handler only takes the counter snapshot and queues it; it returns at once so
//! the loop calls `/event/next` again and the environment can freeze as soon as the
//! function has responded. Everything else runs in the pipeline task (`warden_core::pipeline`). The one exception is
//! a policy with `recycle`: each INVOKE is then held until the invocation's
//! `platform.runtimeDone`, so a pending recycle can end the environment after the response and
//! before the next event (docs/responses.md).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::{ready, Future};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lambda_extension::{service_fn, Extension, LambdaEvent, NextEvent};
use tokio::sync::{mpsc, oneshot, watch, Notify};

use crate::events_api::{ApiError, EventsClient};
use crate::wiring::{build_detector, build_pipeline, load_profile, prepare_lockdown};
use warden_core::clock::unix_ms;
use warden_core::config::{Config, Mode};
use warden_core::health::{Counter, Health};
use warden_core::pipeline::recycle::Recycler;
use warden_core::pipeline::Command;
use warden_core::respond::procs::ProcTable;
use warden_core::respond::Shared;
use warden_core::schema::{Action, ShutdownReason};
use warden_core::sources::procfs::{CounterSnapshot, ProcReader};
use warden_core::sources::scratch::ScratchProbe;
use warden_core::sources::telemetry::guard::{PathToken, QueueBytes};
use warden_core::sources::telemetry::{listener, subscribe, TelemetryEvent};

/// Name used when the executable's own name cannot be read.
pub(crate) const DEFAULT_NAME: &str = "warden";
/// Lifecycle commands queued at most (INVOKEs are at least milliseconds apart).
const COMMAND_QUEUE: usize = 64;
/// Telemetry batches queued at most.
const TELEMETRY_QUEUE: usize = 256;
/// Longest wait for the pipeline's flush once the API loop has ended after SHUTDOWN.
const FLUSH_GRACE: Duration = Duration::from_millis(1_800);
/// Request ids of recent `platform.runtimeDone` events kept for the recycle hold.
const DONE_KEPT: usize = 8;

/// Why the extension stopped before a normal SHUTDOWN.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LifecycleError {
    /// Not started by Lambda (or a stand-in).
    #[error("AWS_LAMBDA_RUNTIME_API is not set; Warden only runs as a Lambda extension")]
    NoRuntimeApi,
    /// Registration was refused or failed.
    #[error("registering with the Extensions API failed")]
    Register(#[source] lambda_extension::Error),
    /// The next-event loop failed.
    #[error("the Extensions API loop ended")]
    Api(#[source] lambda_extension::Error),
    /// A recycle response ended the environment on purpose.
    #[error("exited to recycle the execution environment")]
    Recycled,
}

/// The name Lambda knows this extension by: the file name in /opt/extensions.
pub(crate) fn extension_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| DEFAULT_NAME.to_string())
}

/// Runs the extension until SHUTDOWN has been handled.
pub(crate) async fn run(
    config: Config,
    health: Arc<Health>,
    started: Instant,
) -> Result<(), LifecycleError> {
    if config.lambda.runtime_api.is_none() {
        return Err(LifecycleError::NoRuntimeApi);
    }
    match config.mode {
        Mode::Off => run_idle().await,
        Mode::On | Mode::Learn => run_on(config, health, started).await,
    }
}

/// `WARDEN_MODE=off`: registered for SHUTDOWN only, so Lambda never waits on Warden.
async fn run_idle() -> Result<(), LifecycleError> {
    let name = extension_name();
    let processor = service_fn(|_: LambdaEvent| ready(Ok::<(), Infallible>(())));
    let events = ["SHUTDOWN"];
    let registered = Extension::new()
        .with_extension_name(&name)
        .with_events(&events)
        .with_events_processor(processor)
        .register()
        .await
        .map_err(LifecycleError::Register)?;
    warden_core::info!("mode off: registered for SHUTDOWN only");
    // The processor returns at SHUTDOWN and the crate asks for the next event, which
    // never comes: the process ends when Lambda stops it.
    registered.run().await.map_err(LifecycleError::Api)
}

/// What the INVOKE/SHUTDOWN handler owns.
struct Handler {
    reader: ProcReader,
    scratch: ScratchProbe,
    commands: mpsc::Sender<Command>,
    health: Arc<Health>,
    shutdown_seen: Arc<Notify>,
    shutdown_started: Arc<AtomicBool>,
    responses: Shared,
    /// A response policy is set: the platform's processes must be known.
    responding: bool,
    proc_root: PathBuf,
    recycle: Option<Arc<Recycler>>,
}

/// Longest wait for the pipeline to open an invocation before the next event is asked for.
const ACCEPT_WAIT: Duration = Duration::from_millis(20);

/// The handler's hold: an INVOKE kept until the pipeline has opened it and, when a recycle
/// is pending, until the recycle could be carried out (`None`: the next event can be asked
/// for at once).
type Handled = Option<Pin<Box<dyn Future<Output = Result<(), Infallible>> + Send>>>;

impl Handler {
    fn snapshot(&mut self) -> CounterSnapshot {
        let (reader, scratch) = (&mut self.reader, &self.scratch);
        let taken =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.snapshot(scratch)));
        let snapshot = taken.unwrap_or_else(|_| {
            self.health.note(
                Counter::StagePanics,
                format_args!("the /proc snapshot panicked"),
            );
            CounterSnapshot::default()
        });
        let errors = self.reader.take_errors();
        if errors > 0 {
            self.health.note(
                Counter::ProcErrors,
                format_args!("{errors} /proc read(s) failed"),
            );
        }
        snapshot
    }

    fn handle(&mut self, event: NextEvent) -> Handled {
        // Snapshot first: the function is already running.
        let snapshot = self.snapshot();
        let mut hold = None;
        let mut accepted = None;
        let command = match event {
            NextEvent::Invoke(e) => {
                if let Some(r) = &self.recycle {
                    hold = Some(r.clone().hold(e.request_id.clone(), e.deadline_ms));
                }
                let (tell, told) = oneshot::channel();
                accepted = Some(told);
                Command::Invoke {
                    request_id: e.request_id,
                    snapshot,
                    unix_ms: unix_ms(),
                    deadline_ms: e.deadline_ms,
                    accepted: Some(tell),
                }
            }
            NextEvent::Shutdown(e) => {
                self.shutdown_started.store(true, Ordering::SeqCst);
                self.shutdown_seen.notify_one();
                Command::Shutdown {
                    reason: ShutdownReason::parse(&e.shutdown_reason),
                    deadline_ms: e.deadline_ms,
                    snapshot,
                    flushed: None,
                }
            }
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = self.commands.try_send(command) {
            self.health.note(
                Counter::QueueFull,
                format_args!("lifecycle queue full; event dropped"),
            );
        }
        self.capture_platform();
        let accepted = accepted.map(|told| async move {
            // Bounded: a stalled pipeline never holds the environment up.
            let _ = tokio::time::timeout(ACCEPT_WAIT, told).await;
        });
        match (accepted, hold) {
            (None, None) => None,
            (accepted, hold) => Some(Box::pin(async move {
                if let Some(accepted) = accepted {
                    accepted.await;
                }
                match hold {
                    Some(hold) => hold.await,
                    None => Ok(()),
                }
            }) as Pin<Box<_>>),
        }
    }

    /// At the first event, init is complete: the runtime and the extensions are known.
    fn capture_platform(&self) {
        let platform = &self.responses.platform;
        if self.responding && !platform.captured() {
            platform.capture(&ProcTable::read(&self.proc_root), std::process::id());
        }
    }
}

async fn run_on(
    config: Config,
    health: Arc<Health>,
    started: Instant,
) -> Result<(), LifecycleError> {
    let self_pid = std::process::id();
    let responses = Shared::default();
    let scratch = ScratchProbe::new(&config.tmp_dir);
    let mut reader = ProcReader::new(&config.proc_root, self_pid);
    if config.uses_network() {
        reader.track_own_traffic(Some(config.telemetry_port));
    }
    let first = reader.snapshot(&scratch);
    let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
    let (tel_tx, tel_rx) = mpsc::channel(TELEMETRY_QUEUE);
    let shutdown_seen = Arc::new(Notify::new());
    let shutdown_started = Arc::new(AtomicBool::new(false));
    let recycled = Arc::new(Notify::new());
    let recycling = Arc::new(AtomicBool::new(false));
    let (done_tx, done_watch) = watch::channel(VecDeque::new());
    let recycle = config.outputs.response.uses(Action::Recycle) && !config.outputs.dry_run;
    let handler = Handler {
        reader,
        scratch,
        commands: cmd_tx.clone(),
        health: health.clone(),
        shutdown_seen: shutdown_seen.clone(),
        shutdown_started: shutdown_started.clone(),
        responses: responses.clone(),
        responding: !config.outputs.response.rules.is_empty(),
        proc_root: config.proc_root.clone(),
        recycle: recycle.then(|| {
            Arc::new(Recycler::new(
                responses.clone(),
                config.lambda.runtime_api.clone().unwrap_or_default(),
                config.tmp_dir.clone(),
                config.proc_root.clone(),
                done_watch,
                recycled.clone(),
                recycling.clone(),
                cmd_tx,
            ))
        }),
    };
    let mut pipeline = build_pipeline(&config, health.clone(), first);
    let lockdown_page = prepare_lockdown(&config, &health);
    if let (Some(Some(page)), Some(watch)) = (&lockdown_page, pipeline.filewatch.as_mut()) {
        watch.own_file(page.path());
    }

    let name = extension_name();
    let events = ["INVOKE", "SHUTDOWN"];
    // Events are read by `next_loop`, not by the crate: its processor is never called.
    let registered = Extension::new()
        .with_extension_name(&name)
        .with_events(&events)
        .with_events_processor(service_fn(|_: LambdaEvent| ready(Ok::<(), Infallible>(()))))
        .register()
        .await
        .map_err(LifecycleError::Register)?;
    let account = registered.account_id.clone();
    responses.gate.set_extension_id(&registered.extension_id);
    let tel_tx = if recycle {
        tap_runtime_done(tel_tx, done_tx)
    } else {
        tel_tx
    };
    let subscribed = start_telemetry(
        &config,
        &registered.extension_id,
        tel_tx,
        &health,
        pipeline.telemetry_bytes.clone(),
    )
    .await;
    responses.gate.set_holding(recycle && subscribed);

    let (done_tx, done_rx) = oneshot::channel();
    let mut client = EventsClient::new(
        config.lambda.runtime_api.as_deref().unwrap_or_default(),
        &registered.extension_id,
    );
    // Connected before the pipeline task exists, so that the first /event/next goes out
    // before that task first runs (a failure here shows again at the first /event/next).
    let _ = client.connect().await;
    // The detector (model file, AWS clients) is built by the pipeline task, which first runs
    // once the first /event/next is out: Lambda counts Warden ready without waiting for it,
    // and INVOKEs and telemetry wait in their queues meanwhile.
    let detector_config = config.clone();
    let (detector_health, detector_responses) = (health.clone(), responses.clone());
    tokio::spawn(async move {
        let mut pipeline = pipeline;
        // An s3:// profile is fetched here, within its deadline: the runtime's init goes on
        // meanwhile, and the first INVOKE waits in its queue at most that long.
        let profile = load_profile(&detector_config, &detector_health).await;
        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            build_detector(
                &detector_config,
                &detector_health,
                &detector_responses,
                lockdown_page,
                profile,
            )
        }));
        match built {
            Ok(Some(detector)) => {
                if let (Some(f), Some(account)) = (detector.forwarder(), &account) {
                    f.set_account(account);
                }
                pipeline.add_detector(detector);
                warden_core::info!(
                    "detector ready {} us after start",
                    started.elapsed().as_micros()
                );
            }
            Ok(None) => {}
            Err(_) => detector_health.note(
                Counter::StagePanics,
                format_args!("building the detector panicked; running without detection"),
            ),
        }
        pipeline.run(cmd_rx, tel_rx, done_tx).await
    });
    warden_core::info!(
        "ready in {} us (start to first /next)",
        started.elapsed().as_micros()
    );

    let api = next_loop(client, handler);
    tokio::pin!(api);
    let mut done = Some(done_rx);
    loop {
        let step = tokio::select! {
            error = &mut api => Step::ApiEnded(error),
            finished = wait_done(&mut done), if done.is_some() => Step::PipelineEnded(finished.is_ok()),
            _ = shutdown_seen.notified(), if done.is_none() => return Ok(()),
            _ = recycled.notified() => Step::Recycled,
        };
        match step {
            Step::ApiEnded(error) => {
                if shutdown_started.load(Ordering::SeqCst) {
                    if let Some(done) = done.take() {
                        let _ = tokio::time::timeout(FLUSH_GRACE, done).await;
                    }
                    return Ok(());
                }
                return Err(LifecycleError::Api(Box::new(error)));
            }
            Step::PipelineEnded(true) if recycling.load(Ordering::SeqCst) => {
                // The recycle's own flush: its exit follows.
                done = None;
            }
            Step::PipelineEnded(true) => return Ok(()),
            Step::Recycled => return Err(LifecycleError::Recycled),
            Step::PipelineEnded(false) => {
                // The pipeline task died: keep answering the API so the function is
                // unaffected, and leave at SHUTDOWN.
                health.note(
                    Counter::StagePanics,
                    format_args!("the pipeline stopped; Warden is now passive"),
                );
                done = None;
            }
        }
    }
}

/// Asks for each event and hands it to the handler, until the API fails (after SHUTDOWN,
/// the next event never comes: the process ends when Lambda stops it).
async fn next_loop(mut client: EventsClient, mut handler: Handler) -> ApiError {
    loop {
        match client.next().await {
            Ok(event) => {
                if let Some(hold) = handler.handle(event) {
                    let _ = hold.await;
                }
            }
            Err(e) => return e,
        }
    }
}

enum Step {
    ApiEnded(ApiError),
    PipelineEnded(bool),
    Recycled,
}

/// Passes telemetry on to the pipeline and notes each `platform.runtimeDone`, which ends a
/// held INVOKE (recycle).
fn tap_runtime_done(
    to_pipeline: mpsc::Sender<Vec<TelemetryEvent>>,
    done: watch::Sender<VecDeque<String>>,
) -> mpsc::Sender<Vec<TelemetryEvent>> {
    let (tx, mut rx) = mpsc::channel::<Vec<TelemetryEvent>>(TELEMETRY_QUEUE);
    tokio::spawn(async move {
        while let Some(batch) = rx.recv().await {
            let ended: Vec<String> = batch
                .iter()
                .filter_map(|e| match e {
                    TelemetryEvent::RuntimeDone(r) => Some(r.request_id.to_string()),
                    _ => None,
                })
                .collect();
            // The pipeline gets the batch first: a finding it makes from the same batch can
            // still schedule a recycle for the invocation that is ending.
            if to_pipeline.send(batch).await.is_err() {
                break;
            }
            for id in ended {
                done.send_modify(|ids| {
                    if ids.len() >= DONE_KEPT {
                        ids.pop_front();
                    }
                    ids.push_back(id);
                });
            }
        }
    });
    tx
}

async fn wait_done(
    done: &mut Option<oneshot::Receiver<()>>,
) -> Result<(), oneshot::error::RecvError> {
    match done {
        Some(rx) => rx.await,
        None => std::future::pending().await,
    }
}

/// Binds the listener and subscribes; a failure leaves Warden running on /proc alone.
/// Returns whether telemetry will arrive.
async fn start_telemetry(
    config: &Config,
    extension_id: &str,
    tx: mpsc::Sender<Vec<TelemetryEvent>>,
    health: &Arc<Health>,
    queued: QueueBytes,
) -> bool {
    let Some(api) = config.lambda.runtime_api.as_deref() else {
        return false;
    };
    let token = match PathToken::generate() {
        Ok(t) => t,
        Err(e) => {
            health.note(
                Counter::SubscribeErrors,
                format_args!("no telemetry path token ({e}); running without telemetry"),
            );
            return false;
        }
    };
    let listener = match listener::bind(config.telemetry_port).await {
        Ok(l) => l,
        Err(e) => {
            health.note(
                Counter::SubscribeErrors,
                format_args!(
                    "telemetry port {} unavailable ({e}); running without telemetry",
                    config.telemetry_port
                ),
            );
            return false;
        }
    };
    let destination = subscribe::Destination {
        port: config.telemetry_port,
        path: token.path(),
    };
    let settings = listener::Settings::new(token.clone());
    tokio::spawn(listener::serve(
        listener,
        tx,
        health.clone(),
        settings,
        queued,
    ));
    if let Err(e) =
        subscribe::subscribe(api, extension_id, &destination, config.telemetry_buffer_ms).await
    {
        health.note(
            Counter::SubscribeErrors,
            format_args!("telemetry subscription failed: {e}"),
        );
        return false;
    }
    true
}
