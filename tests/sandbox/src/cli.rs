//! Command-line parsing: raw arguments → a validated [`RunConfig`].

use std::path::{Path, PathBuf};

use crate::config::{RunConfig, RuntimeKind};

/// A problem with the command line or the files it names.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {reason}")]
    BadPath { path: PathBuf, reason: String },
}

pub const USAGE: &str = "\
usage: warden-sandbox run --layer DIR --function DIR --events FILE.jsonl [options]

Runs one local Lambda execution environment: every executable in DIR/extensions of the layer is
started as an external extension, the function runs on its runtime, and each line of the events
file is one invocation.

options:
  --layer DIR          unpacked layer (what Lambda mounts at /opt); repeatable, later wins
  --function DIR       function code (what Lambda mounts at /var/task)
  --runtime KIND       python (awslambdaric) or provided (DIR/bootstrap); default: guessed
  --handler H          handler, e.g. app.handler (python); default handler.handler
  --memory-mb N        memory size, 128..10240 (default 128)
  --timeout-s N        function timeout in seconds, 1..900 (default 3)
  --events FILE        JSON lines, one invocation payload each ('-' for stdin)
  --report FILE        JSON lines, one per invocation, then a summary line
  --env K=V            extra environment variable for function and extensions; repeatable
  --function-name N    function name (default: the function directory's name)
  --pause-ms N         idle (frozen) time between invocations (default 0)
  --host-link          give the sandbox a network link to the host (address in SANDBOX_HOST_IP)
  --host-forward PORT  with --host-link: host 127.0.0.1:PORT reachable at SANDBOX_HOST_IP:PORT
  --share DIR          make a host directory visible at the same path inside; repeatable
  --python PATH        python for the python runtime (default $WARDEN_SANDBOX_PYTHON or python3)
  --no-isolation       run without namespaces even as root
  --quiet              do not print the per-invocation summary table
";

/// Parses `run` arguments (everything after the subcommand).
pub fn parse_run(args: &[String]) -> Result<RunConfig, CliError> {
    let mut raw = RawArgs::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| CliError::Usage(format!("{name} needs a value")))
        };
        match flag.as_str() {
            "--layer" => raw.layers.push(value(flag)?),
            "--function" => raw.function = Some(value(flag)?),
            "--runtime" => raw.runtime = Some(value(flag)?),
            "--handler" => raw.handler = Some(value(flag)?),
            "--memory-mb" => raw.memory_mb = Some(value(flag)?),
            "--timeout-s" => raw.timeout_s = Some(value(flag)?),
            "--events" => raw.events = Some(value(flag)?),
            "--report" => raw.report = Some(value(flag)?),
            "--env" => raw.env.push(value(flag)?),
            "--function-name" => raw.function_name = Some(value(flag)?),
            "--pause-ms" => raw.pause_ms = Some(value(flag)?),
            "--host-forward" => raw.forwards.push(value(flag)?),
            "--share" => raw.shares.push(value(flag)?),
            "--python" => raw.python = Some(value(flag)?),
            "--host-link" => raw.host_link = true,
            "--no-isolation" => raw.no_isolation = true,
            "--quiet" => raw.quiet = true,
            other => return Err(CliError::Usage(format!("unknown option {other}"))),
        }
    }
    raw.validate()
}

#[derive(Default)]
struct RawArgs {
    layers: Vec<String>,
    function: Option<String>,
    runtime: Option<String>,
    handler: Option<String>,
    memory_mb: Option<String>,
    timeout_s: Option<String>,
    events: Option<String>,
    report: Option<String>,
    env: Vec<String>,
    function_name: Option<String>,
    pause_ms: Option<String>,
    forwards: Vec<String>,
    shares: Vec<String>,
    python: Option<String>,
    host_link: bool,
    no_isolation: bool,
    quiet: bool,
}

impl RawArgs {
    fn validate(self) -> Result<RunConfig, CliError> {
        let function = existing_dir(self.function.as_deref(), "--function")?;
        let mut layers = Vec::new();
        for layer in &self.layers {
            layers.push(existing_dir(Some(layer), "--layer")?);
        }
        let runtime = match self.runtime.as_deref() {
            Some("python") => RuntimeKind::Python,
            Some("provided") => RuntimeKind::Provided,
            Some(other) => {
                return Err(CliError::Usage(format!(
                    "--runtime must be python or provided, not {other}"
                )))
            }
            None if function.join("bootstrap").exists() => RuntimeKind::Provided,
            None => RuntimeKind::Python,
        };
        let handler = self
            .handler
            .unwrap_or_else(|| "handler.handler".to_string());
        check_function(&function, runtime, &handler)?;
        let extensions = find_extensions(&layers)?;
        let events = match self.events.as_deref() {
            None => return Err(CliError::Usage("--events FILE is required".into())),
            Some("-") => None,
            Some(path) => Some(existing_file(path)?),
        };
        let env = self
            .env
            .iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
                _ => Err(CliError::Usage(format!("--env expects K=V, got {kv}"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let forwards = self
            .forwards
            .iter()
            .map(|p| {
                p.parse::<u16>()
                    .map_err(|_| CliError::Usage(format!("--host-forward expects a port, got {p}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !forwards.is_empty() && !self.host_link {
            return Err(CliError::Usage("--host-forward needs --host-link".into()));
        }
        let shares = self
            .shares
            .iter()
            .map(|s| existing_dir(Some(s), "--share"))
            .collect::<Result<Vec<_>, _>>()?;
        let function_name = self.function_name.unwrap_or_else(|| {
            function
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "function".into())
        });
        let python = self
            .python
            .or_else(|| std::env::var("WARDEN_SANDBOX_PYTHON").ok())
            .unwrap_or_else(|| "python3".into());
        Ok(RunConfig {
            layers,
            extensions,
            function,
            runtime,
            handler,
            memory_mb: number(self.memory_mb.as_deref(), "--memory-mb", 128, 128, 10240)?,
            timeout_s: number(self.timeout_s.as_deref(), "--timeout-s", 3, 1, 900)?,
            events,
            report: self.report.map(|r| absolute(Path::new(&r))),
            env,
            function_name,
            pause_ms: number(self.pause_ms.as_deref(), "--pause-ms", 0, 0, 3_600_000)?,
            host_link: self.host_link,
            forwards,
            shares,
            python: resolve_program(&python),
            isolate: !self.no_isolation,
            quiet: self.quiet,
        })
    }
}

fn number(
    raw: Option<&str>,
    name: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, CliError> {
    let Some(raw) = raw else { return Ok(default) };
    match raw.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(CliError::Usage(format!(
            "{name} must be a whole number in {min}..={max}, got {raw}"
        ))),
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn existing_dir(path: Option<&str>, flag: &str) -> Result<PathBuf, CliError> {
    let path = path.ok_or_else(|| CliError::Usage(format!("{flag} DIR is required")))?;
    let path = Path::new(path);
    match std::fs::canonicalize(path) {
        Ok(p) if p.is_dir() => Ok(p),
        Ok(_) => Err(bad(path, "not a directory")),
        Err(e) => Err(bad(path, &e.to_string())),
    }
}

fn existing_file(path: &str) -> Result<PathBuf, CliError> {
    let path = Path::new(path);
    match std::fs::canonicalize(path) {
        Ok(p) if p.is_file() => Ok(p),
        Ok(_) => Err(bad(path, "not a file")),
        Err(e) => Err(bad(path, &e.to_string())),
    }
}

fn bad(path: &Path, reason: &str) -> CliError {
    CliError::BadPath {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Checks that the function directory holds what its runtime will start.
fn check_function(dir: &Path, runtime: RuntimeKind, handler: &str) -> Result<(), CliError> {
    match runtime {
        RuntimeKind::Provided => {
            let bootstrap = dir.join("bootstrap");
            if !bootstrap.exists() {
                return Err(bad(
                    &bootstrap,
                    "missing: a provided runtime needs a bootstrap",
                ));
            }
            if !is_executable(&bootstrap) {
                return Err(bad(&bootstrap, "not executable"));
            }
        }
        RuntimeKind::Python => {
            let (module, func) = handler.rsplit_once('.').ok_or_else(|| {
                CliError::Usage(format!("--handler must be module.function, got {handler}"))
            })?;
            if func.is_empty() || module.is_empty() {
                return Err(CliError::Usage(format!(
                    "--handler must be module.function, got {handler}"
                )));
            }
            let file = dir.join(format!("{}.py", module.replace('.', "/")));
            let package = dir.join(module.replace('.', "/")).join("__init__.py");
            if !file.is_file() && !package.is_file() {
                return Err(bad(
                    &file,
                    "missing: the handler's module is not in --function",
                ));
            }
        }
    }
    Ok(())
}

/// Lists `extensions/*` of every layer; later layers replace same-named files, as /opt does.
fn find_extensions(layers: &[PathBuf]) -> Result<Vec<(String, PathBuf)>, CliError> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for layer in layers {
        let dir = layer.join("extensions");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                continue;
            }
            if !is_executable(&path) {
                return Err(bad(&path, "layer extension is not executable (chmod +x)"));
            }
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            found.retain(|(n, _)| *n != name);
            found.push((name, path));
        }
    }
    if found.len() > 10 {
        return Err(CliError::Usage(format!(
            "Lambda allows at most 10 extensions, the layers hold {}",
            found.len()
        )));
    }
    Ok(found)
}

/// Resolves a bare program name through PATH so that it survives the mount changes.
fn resolve_program(program: &str) -> PathBuf {
    if program.contains('/') {
        return absolute(Path::new(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
        .unwrap_or_else(|| PathBuf::from(program))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn missing_handler_module_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let events = dir.path().join("e.jsonl");
        std::fs::write(&events, "{}\n").unwrap();
        let err = parse_run(&args(&[
            "--function",
            dir.path().to_str().unwrap(),
            "--runtime",
            "python",
            "--handler",
            "app.main",
            "--events",
            events.to_str().unwrap(),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("app.py"), "{err}");
    }

    #[test]
    fn non_executable_extension_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("layer/extensions")).unwrap();
        std::fs::write(dir.path().join("layer/extensions/ext"), "x").unwrap();
        std::fs::create_dir_all(dir.path().join("fn")).unwrap();
        std::fs::write(dir.path().join("fn/handler.py"), "").unwrap();
        std::fs::write(dir.path().join("e.jsonl"), "{}\n").unwrap();
        let p = |s: &str| dir.path().join(s).to_string_lossy().into_owned();
        let err = parse_run(&args(&[
            "--layer",
            &p("layer"),
            "--function",
            &p("fn"),
            "--events",
            &p("e.jsonl"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("not executable"), "{err}");
    }

    #[test]
    fn out_of_range_memory_is_rejected() {
        assert!(number(Some("64"), "--memory-mb", 128, 128, 10240).is_err());
        assert_eq!(number(None, "--memory-mb", 128, 128, 10240).unwrap(), 128);
    }
}
