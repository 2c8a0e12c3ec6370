//! A local AWS API server for tests: moto in server mode from the project's venv, on
//! 127.0.0.1 and a free port, stopped when dropped. Tests reach it from inside the sandbox
//! through `--host-link --host-forward PORT` at `http://host.sandbox:PORT`, and read results
//! back with boto3 (tests/aws/aws_client.py), a client that is not Warden.

// Test-support code, called only from tests: a failed setup step should stop the test at once
// with a message, which is what `expect` does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::repo_root;

/// The account moto answers for, and the credentials tests hand to the sandbox.
pub const REGION: &str = "us-east-1";

/// A running moto server.
pub struct MotoServer {
    child: Option<Child>,
    port: u16,
}

impl MotoServer {
    /// Starts a server on a free port and waits until it answers.
    pub fn start() -> MotoServer {
        Self::start_on(free_port())
    }

    /// Starts a server on `port` (e.g. to bring one back after an outage).
    pub fn start_on(port: u16) -> MotoServer {
        let exe = venv_bin("moto_server");
        assert!(
            exe.exists(),
            "{} is missing: run scripts/setup (it installs moto[server] into .venv)",
            exe.display()
        );
        let child = Command::new(&exe)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // Inside the sandbox the server is `host.sandbox`, which moto would otherwise read
            // as a bucket's host name: clients here address buckets by path.
            .env("S3_IGNORE_SUBDOMAIN_BUCKETNAME", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto_server");
        let server = MotoServer {
            child: Some(child),
            port,
        };
        let until = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < until,
                "moto_server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The endpoint as the host sees it.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Runs `tests/aws/aws_client.py ARGS` against this server and parses its JSON output.
    pub fn client(&self, args: &[&str]) -> Value {
        client(&self.endpoint(), args)
    }

    /// `http://host.sandbox:PORT`, for code in a sandbox run with `--host-forward PORT`.
    pub fn sandbox_endpoint(&self) -> String {
        format!("http://host.sandbox:{}", self.port)
    }

    /// Variables that point the AWS SDKs in the sandbox at this server.
    pub fn sandbox_env(&self) -> Vec<(String, String)> {
        sandbox_env(self.port)
    }

    /// Runs a Python script of the repo (e.g. `tests/aws/moto_lambda.py`) with the venv's
    /// Python, the endpoint as its first argument and then `args`; panics on failure.
    pub fn script(&self, script: &str, args: &[&str]) -> Output {
        let out = Command::new(venv_bin("python"))
            .arg(repo_root().join(script))
            .arg(self.endpoint())
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", REGION)
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

    /// Stops the server (an outage); the port stays reserved for nobody.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Environment that points the sandbox's AWS SDK users at a local server on `port`.
pub fn sandbox_env(port: u16) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", format!("http://host.sandbox:{port}")),
        ("AWS_REGION", REGION.to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ("AWS_SESSION_TOKEN", "testing".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Runs the boto3 client script against `endpoint`.
pub fn client(endpoint: &str, args: &[&str]) -> Value {
    let out = Command::new(venv_bin("python"))
        .arg(repo_root().join("tests/aws/aws_client.py"))
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .expect("running tests/aws/aws_client.py");
    assert!(
        out.status.success(),
        "aws_client.py {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("aws_client.py prints JSON")
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding a free port")
}

fn venv_bin(name: &str) -> PathBuf {
    repo_root().join(".venv/bin").join(name)
}
