//! The environment the runtime and every extension see: where things sit ([`Layout`]) and
//! the variables Lambda gives them.

use std::path::PathBuf;

use crate::config::{RunConfig, RuntimeKind};

/// Where the engine finds things: inside the namespaces layer and code sit at /opt and
/// /var/task; without isolation they stay where they are on the host.
pub struct Layout {
    pub opt: PathBuf,
    pub task_root: PathBuf,
    pub python: PathBuf,
    pub api_addr: String,
    pub host_ip: Option<String>,
}

/// Lambda's reserved variables, then the user's `--env` values (which may override the
/// non-reserved ones, as function configuration does).
pub fn lambda_env(cfg: &RunConfig, layout: &Layout) -> Vec<(String, String)> {
    let task = layout.task_root.to_string_lossy().into_owned();
    let opt = layout.opt.to_string_lossy().into_owned();
    let host_path = std::env::var("PATH").unwrap_or_default();
    let stream = format!(
        "{}/[$LATEST]{}",
        &crate::clock::rfc3339_now()[..10].replace('-', "/"),
        uuid::Uuid::new_v4().simple()
    );
    let region = crate::state::region(cfg);
    let mut env: Vec<(String, String)> = vec![
        (
            "PATH".into(),
            format!("{opt}/bin:/usr/local/bin:/usr/bin:/bin:{host_path}"),
        ),
        ("LANG".into(), "en_US.UTF-8".into()),
        ("TZ".into(), ":UTC".into()),
        ("LD_LIBRARY_PATH".into(), format!("{opt}/lib")),
        ("AWS_LAMBDA_RUNTIME_API".into(), layout.api_addr.clone()),
        ("AWS_LAMBDA_FUNCTION_NAME".into(), cfg.function_name.clone()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(),
            cfg.memory_mb.to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE".into(), "on-demand".into()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME".into(),
            format!("/aws/lambda/{}", cfg.function_name),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME".into(), stream),
        ("AWS_REGION".into(), region.clone()),
        ("AWS_DEFAULT_REGION".into(), region),
        ("AWS_ACCESS_KEY_ID".into(), "ASIASANDBOXEXAMPLEKEY".into()),
        (
            "AWS_SECRET_ACCESS_KEY".into(),
            "sandboxSecretAccessKeyNotARealOne0000000".into(),
        ),
        ("AWS_SESSION_TOKEN".into(), "sandbox-session-token".into()),
        ("_HANDLER".into(), cfg.handler.clone()),
        ("LAMBDA_TASK_ROOT".into(), task.clone()),
        ("LAMBDA_RUNTIME_DIR".into(), "/var/runtime".into()),
    ];
    match cfg.runtime {
        RuntimeKind::Python => {
            env.push(("AWS_EXECUTION_ENV".into(), "AWS_Lambda_python3.11".into()));
            env.push(("PYTHONPATH".into(), format!("{task}:{opt}/python")));
        }
        RuntimeKind::Provided => {
            env.push((
                "AWS_EXECUTION_ENV".into(),
                "AWS_Lambda_provided.al2023".into(),
            ));
        }
    }
    if let Some(ip) = &layout.host_ip {
        env.push(("SANDBOX_HOST_IP".into(), ip.clone()));
    }
    for (k, v) in &cfg.env {
        env.retain(|(name, _)| name != k);
        env.push((k.clone(), v.clone()));
    }
    env
}
