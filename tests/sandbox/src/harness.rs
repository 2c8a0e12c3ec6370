//! Test helpers: lay out a layer and a function, run the `warden-sandbox` binary on them, and
//! read back what happened. Used by this crate's conformance tests and by the extension's tests.

// Test-support code, called only from tests: a failed setup step should stop the test at once
// with a message, which is what `expect` does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// `target/<profile>` of the workspace the running test binary was built in.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test binary>
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("test binary inside target/<profile>/deps")
}

/// The workspace root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crate two levels below the root")
        .to_path_buf()
}

/// A workspace binary; the test command builds them all before the tests run.
pub fn bin(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// The Python that has `awslambdaric`: $WARDEN_SANDBOX_PYTHON, else the repo's .venv.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("WARDEN_SANDBOX_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = repo_root().join(".venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// A scratch directory under `target/`, on the same file system as the binaries so that they
/// can be hard-linked into layers, and outside /tmp, which the sandbox replaces.
pub fn scratch() -> tempfile::TempDir {
    let base = target_dir().join("sandbox-scratch");
    std::fs::create_dir_all(&base).expect("creating the scratch base");
    tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(base)
        .expect("creating a scratch dir")
}

fn place(from: &Path, to: &Path) {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).expect("creating a directory");
    }
    let _ = std::fs::remove_file(to);
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to).expect("copying a binary");
    }
}

/// How the function is given to the sandbox.
enum Function {
    Python {
        dir: PathBuf,
        handler: String,
    },
    Bootstrap(PathBuf),
    /// A custom runtime's code directory, its `bootstrap` among its files.
    Provided(PathBuf),
}

/// A sandbox run being set up.
pub struct Sandbox {
    dir: tempfile::TempDir,
    function: Function,
    extensions: Vec<(String, PathBuf)>,
    args: Vec<String>,
}

/// What a run produced.
pub struct Run {
    pub output: Output,
    pub stdout: String,
    pub stderr: String,
    /// The report's invocation lines.
    pub invocations: Vec<Value>,
    pub summary: Value,
    /// The directory shared with the sandbox (`Sandbox::shared`), kept until this is dropped.
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    /// A Python function run by awslambdaric, from a directory of the repo.
    pub fn python(dir: impl Into<PathBuf>, handler: &str) -> Sandbox {
        Sandbox::with(Function::Python {
            dir: dir.into(),
            handler: handler.into(),
        })
    }

    /// The repo's Python probe function.
    pub fn python_probe() -> Sandbox {
        Sandbox::python(
            repo_root().join("tests/functions/python-probe"),
            "handler.handler",
        )
    }

    /// A custom-runtime function: `binary` becomes the function's `bootstrap`.
    pub fn bootstrap(binary: impl Into<PathBuf>) -> Sandbox {
        Sandbox::with(Function::Bootstrap(binary.into()))
    }

    /// A custom-runtime function whose code directory `dir` holds its `bootstrap` and the
    /// files it runs.
    pub fn provided(dir: impl Into<PathBuf>) -> Sandbox {
        Sandbox::with(Function::Provided(dir.into()))
    }

    /// The repo's Rust probe function on `lambda_runtime`.
    pub fn rust_probe() -> Sandbox {
        Sandbox::bootstrap(bin("rust-probe"))
    }

    fn with(function: Function) -> Sandbox {
        let dir = scratch();
        std::fs::create_dir_all(dir.path().join("shared")).expect("creating the shared dir");
        Sandbox {
            dir,
            function,
            extensions: Vec::new(),
            args: Vec::new(),
        }
    }

    /// Adds an executable to the layer's `extensions/` under `name`.
    pub fn extension(mut self, name: &str, binary: impl Into<PathBuf>) -> Sandbox {
        self.extensions.push((name.into(), binary.into()));
        self
    }

    /// Adds the reference extension, dumping what it sees to `shared/<name>.jsonl`.
    pub fn reference_extension(self, name: &str) -> Sandbox {
        let dump = self.shared().join(format!("{name}.jsonl"));
        self.extension(name, bin("reference-extension"))
            .env("REFERENCE_EXTENSION_DUMP", &dump.to_string_lossy())
    }

    /// Adds the scripted Python extension (tests/extensions/scripted), writing what it sees to
    /// `shared/scripted.jsonl` (read back with `Run::shared_lines("scripted.jsonl")`).
    pub fn scripted_extension(self) -> Sandbox {
        let out = self.shared().join("scripted.jsonl");
        self.extension(
            "scripted",
            repo_root().join("tests/extensions/scripted/scripted_extension.py"),
        )
        .env("SCRIPTED_OUT", &out.to_string_lossy())
    }

    pub fn env(mut self, key: &str, value: &str) -> Sandbox {
        self.args.push("--env".into());
        self.args.push(format!("{key}={value}"));
        self
    }

    pub fn arg(mut self, arg: &str) -> Sandbox {
        self.args.push(arg.into());
        self
    }

    /// A directory visible at the same path inside the sandbox.
    pub fn shared(&self) -> PathBuf {
        self.dir.path().join("shared")
    }

    /// The layer directory (for tests that add files to it).
    pub fn layer_dir(&self) -> PathBuf {
        self.dir.path().join("layer")
    }

    /// Runs the events (one JSON value each) and collects the report.
    pub fn run(self, events: &[Value]) -> Run {
        let lines: Vec<String> = events.iter().map(Value::to_string).collect();
        self.run_lines(&lines)
    }

    /// Runs raw event lines (which need not be valid JSON).
    pub fn run_lines(self, lines: &[String]) -> Run {
        let root = self.dir.path();
        let layer = root.join("layer");
        std::fs::create_dir_all(layer.join("extensions")).expect("creating the layer");
        for (name, binary) in &self.extensions {
            place(binary, &layer.join("extensions").join(name));
        }
        let events = root.join("events.jsonl");
        std::fs::write(&events, lines.join("\n") + "\n").expect("writing events");
        let report = root.join("report.jsonl");
        let mut cmd = Command::new(bin("warden-sandbox"));
        cmd.arg("run").arg("--layer").arg(&layer);
        match &self.function {
            Function::Python { dir, handler } => {
                cmd.arg("--function")
                    .arg(dir)
                    .args(["--runtime", "python", "--handler", handler]);
                cmd.arg("--python").arg(python());
            }
            Function::Bootstrap(binary) => {
                let code = root.join("function");
                place(binary, &code.join("bootstrap"));
                cmd.arg("--function")
                    .arg(&code)
                    .args(["--runtime", "provided"]);
            }
            Function::Provided(dir) => {
                cmd.arg("--function")
                    .arg(dir)
                    .args(["--runtime", "provided"]);
            }
        }
        cmd.arg("--events")
            .arg(&events)
            .arg("--report")
            .arg(&report);
        cmd.arg("--share").arg(self.shared());
        cmd.args(&self.args);
        let output = cmd.output().expect("running warden-sandbox");
        let text = std::fs::read_to_string(&report).unwrap_or_default();
        let mut invocations = Vec::new();
        let mut summary = Value::Null;
        for line in text.lines() {
            let Ok(value) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if value["type"] == "summary" {
                summary = value;
            } else {
                invocations.push(value);
            }
        }
        Run {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            output,
            invocations,
            summary,
            dir: self.dir,
        }
    }
}

impl Run {
    /// JSON lines of a file in the shared directory.
    pub fn shared_lines(&self, file: &str) -> Vec<Value> {
        let path = self.dir.path().join("shared").join(file);
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Telemetry records the reference extension `name` received, in arrival order.
    pub fn telemetry(&self, name: &str) -> Vec<Value> {
        self.shared_lines(&format!("{name}.jsonl"))
            .into_iter()
            .filter(|l| l["kind"] == "telemetry")
            .map(|l| l["record"].clone())
            .collect()
    }

    /// Lifecycle events the reference extension `name` received.
    pub fn events(&self, name: &str) -> Vec<Value> {
        self.shared_lines(&format!("{name}.jsonl"))
            .into_iter()
            .filter(|l| l["kind"] == "event")
            .map(|l| l["event"].clone())
            .collect()
    }

    /// JSON objects printed on stdout (by the function or an extension) that have `key`.
    pub fn stdout_json_with(&self, key: &str) -> Vec<Value> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get(key).is_some())
            .collect()
    }

    /// Panics with the sandbox's output when the run itself failed.
    pub fn assert_ok(&self) -> &Run {
        assert!(
            self.output.status.success(),
            "sandbox failed: {}\nstdout:\n{}\nstderr:\n{}",
            self.output.status,
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn statuses(&self) -> Vec<String> {
        self.invocations
            .iter()
            .map(|i| i["status"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

/// A host listener standing in for an attacker's server: reads and discards whatever each
/// connection sends, then holds it open for `hold` (a connection that opens and closes between
/// two sampler ticks is counted but cannot be named). Returns its port.
pub fn draining_listener(hold: std::time::Duration) -> u16 {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 65536];
                while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
                std::thread::sleep(hold);
            });
        }
    });
    port
}
