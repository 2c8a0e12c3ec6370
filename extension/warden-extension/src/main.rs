//! The Warden extension binary: started by Lambda from /opt/extensions/warden. Its own job
//! is the Extensions API side ([`lifecycle`], with [`events_api`] the lean `/event/next`
//! client) and putting the pipeline together ([`wiring`]); everything it runs comes from
//! `warden-core`.

mod events_api;
mod lifecycle;
mod wiring;

use std::sync::Arc;
use std::time::Instant;

use warden_core::config::Config;
use warden_core::health::{Counter, Health};

fn main() {
    let started = Instant::now();
    let (config, errors) = Config::from_env();
    warden_core::log::set_level(config.log_level);
    let health = Arc::new(Health::default());
    for e in &errors {
        health.add(Counter::ConfigErrors, 1);
        warden_core::warn!("{e}");
    }
    let code = match try_main(config, health, started) {
        Ok(()) => 0,
        Err(e) => {
            warden_core::error!("{e:#}");
            1
        }
    };
    // Exit at once: nothing left is worth waiting for, and the SHUTDOWN deadline is short.
    std::process::exit(code);
}

fn try_main(config: Config, health: Arc<Health>, started: Instant) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(lifecycle::run(config, health, started))?;
    Ok(())
}
