//! Drives a run inside the environment: serves the API, feeds the events, writes the report.

use std::fs::File;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::watch;

use crate::config::RunConfig;
use crate::engine::{self, Engine};
use crate::environment::Layout;
use crate::report::{self, Invocation, Summary};
use crate::state::Shared;
use crate::telemetry::Telemetry;

/// Files opened before the file system view changes.
pub struct Files {
    pub events: Box<dyn AsyncRead + Send + Unpin>,
    pub report: Option<File>,
}

impl Files {
    pub fn open(cfg: &RunConfig) -> Result<Files> {
        let events: Box<dyn AsyncRead + Send + Unpin> = match &cfg.events {
            Some(path) => Box::new(tokio::fs::File::from_std(
                File::open(path).with_context(|| format!("opening {}", path.display()))?,
            )),
            None => Box::new(tokio::io::stdin()),
        };
        let report = match &cfg.report {
            Some(path) => {
                Some(File::create(path).with_context(|| format!("creating {}", path.display()))?)
            }
            None => None,
        };
        Ok(Files { events, report })
    }
}

/// Runs every event, then SHUTDOWN; returns the summary.
pub async fn run(
    cfg: RunConfig,
    layout: Layout,
    files: Files,
    isolated: bool,
) -> Result<serde_json::Value> {
    let exits = crate::procs::start_reaper().context("starting the reaper thread")?;
    let listener = tokio::net::TcpListener::bind(&layout.api_addr)
        .await
        .with_context(|| format!("binding the Runtime API on {}", layout.api_addr))?;
    let mut layout = layout;
    layout.api_addr = listener.local_addr()?.to_string();
    let quiet = cfg.quiet;
    let pause = Duration::from_millis(cfg.pause_ms);
    let (frozen_tx, frozen_rx) = watch::channel(false);
    let telemetry = Telemetry::new(frozen_rx);
    let shared = Arc::new(Shared::new(cfg, telemetry));
    tokio::spawn(crate::api::serve(listener, shared.clone()));
    let mut engine = Engine::new(shared, layout, frozen_tx);
    engine.watch_exits(exits);

    let Files { events, mut report } = files;
    let mut lines = BufReader::new(events).lines();
    let mut summary = Summary::default();
    let mut index = 0;
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        if index > 0 && !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        let mut inv = match engine::parse_event(&line) {
            Ok(payload) => engine.invoke(payload).await,
            Err(message) => Invocation::rejected(message),
        };
        inv.index = index;
        index += 1;
        if !quiet {
            eprintln!("{}", report::describe(&inv));
        }
        if let Some(file) = report.as_mut() {
            writeln!(file, "{}", serde_json::to_string(&inv)?)?;
            file.flush()?;
        }
        summary.add(&inv);
    }
    engine.shutdown().await;
    let summary = summary.to_json(isolated);
    if let Some(file) = report.as_mut() {
        writeln!(file, "{summary}")?;
        file.flush()?;
    }
    eprintln!("[sandbox] summary {summary}");
    Ok(summary)
}
