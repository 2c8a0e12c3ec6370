//! A local AWS API server for tests: moto in server mode (`moto_server` from the repo's
//! `.venv`, installed by scripts/setup), on a free 127.0.0.1 port, killed when dropped.
//! Sandboxed code reaches it with `--host-link --host-forward PORT` at
//! `http://host.sandbox:PORT`; the host side uses [`MotoServer::endpoint`].

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::repo_root;

/// Longest wait for the server to accept connections.
const START_LIMIT: Duration = Duration::from_secs(30);

/// A running `moto_server`.
pub struct MotoServer {
    child: Child,
    port: u16,
}

/// The venv's `moto_server`; a missing one fails the test with what to do.
pub fn moto_server_bin() -> PathBuf {
    let path = repo_root().join(".venv/bin/moto_server");
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup (it installs moto[server] from scripts/requirements.txt into .venv)",
        path.display()
    );
    path
}

/// The venv's Python (with boto3, which moto brings).
pub fn venv_python() -> PathBuf {
    let path = repo_root().join(".venv/bin/python");
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("finding a free port")
}

impl MotoServer {
    /// Starts the server and waits until it accepts connections.
    pub fn start() -> MotoServer {
        let bin = moto_server_bin();
        let port = free_port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let mut server = MotoServer { child, port };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("moto_server exited at start: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not accept connections on port {} within {START_LIMIT:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`, for clients on the host.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://host.sandbox:PORT`, for code in a sandbox run with `--host-forward PORT`.
    pub fn sandbox_endpoint(&self) -> String {
        format!("http://host.sandbox:{}", self.port)
    }

    /// Variables that point the AWS SDKs at this server with moto's test credentials.
    pub fn sandbox_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.sandbox_endpoint()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ]
    }

    /// Runs a Python script of the repo (e.g. `tests/aws/moto_lambda.py`) with the venv's
    /// Python, the endpoint as its first argument and then `args`; panics on failure.
    pub fn script(&self, script: &str, args: &[&str]) -> Output {
        let out = Command::new(venv_python())
            .arg(repo_root().join(script))
            .arg(self.endpoint())
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .output()
            .unwrap_or_else(|e| panic!("running {script}: {e}"));
        assert!(
            out.status.success(),
            "{script} {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
